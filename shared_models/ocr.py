"""OCR request options and results: Word -> Line -> OcrResult, barcodes and structured fields."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class DocumentType(str, Enum):
    """What the photo shows; decides which stages run and which fields are extracted."""

    PRODUCT = "product"
    RECEIPT = "receipt"
    INVOICE = "invoice"
    BARCODE = "barcode"


class Language(str, Enum):
    """Language of the printed text."""

    EN = "en"
    BN = "bn"


class OcrOptions(BaseModel):
    """Per-request options, as the API receives them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: DocumentType = Field(DocumentType.PRODUCT, description="What the image shows.")
    confidence_threshold: float = Field(
        0.8, ge=0.0, le=1.0, description="Lines read below this confidence go to the fallback engine."
    )
    extract_barcodes: bool = Field(True, description="Decode barcodes and QR codes.")
    language: Language = Field(Language.EN, description="Language of the text.")


class BoundingBox(BaseModel):
    """Axis-aligned box in pixels of the image as uploaded (after EXIF orientation)."""

    x: int
    y: int
    width: int
    height: int


class Word(BaseModel):
    """One recognised word."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    bounding_box: BoundingBox
    engine: str


class Line(BaseModel):
    """One text line in reading order."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    bounding_box: BoundingBox
    words: list[Word] = Field(default_factory=list)
    engine: str


class Barcode(BaseModel):
    """One decoded barcode or 2-D code."""

    type: str = Field(description="Format name as zxing spells it, e.g. EAN_13, QR_CODE.")
    value: str
    confidence: float = Field(ge=0.0, le=1.0)
    bounding_box: BoundingBox
    decoder: str = Field(description="zxing-cpp or zbar.")
    gs1: dict[str, str] | None = Field(
        None, description="GS1 application identifiers, e.g. {'01': GTIN, '17': expiry, '10': lot}."
    )


class LineItem(BaseModel):
    """One item row of a receipt or invoice."""

    name: str
    quantity: float | None = None
    price: float | None = None


class StructuredFields(BaseModel):
    """Fields extracted for the request's type; fields that were not found are null."""

    product_name: str | None = None
    price: float | None = None
    currency: str | None = None
    barcode: str | None = None
    sku: str | None = None
    expiry_date: str | None = Field(None, description="ISO 8601 date.")
    quantity: float | None = None
    unit: str | None = None
    merchant: str | None = None
    address: str | None = None
    date: str | None = Field(None, description="ISO 8601 date of the receipt or invoice.")
    total: float | None = None
    tax: float | None = None
    items: list[LineItem] = Field(default_factory=list)
    invoice_number: str | None = None
    due_date: str | None = None
    vendor: str | None = None
    confidence: dict[str, float] = Field(
        default_factory=dict, description="Per-field confidence, 0-1, for the fields that were found."
    )


class OcrResult(BaseModel):
    """Everything the pipeline returns for one image."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    lines: list[Line] = Field(default_factory=list)
    barcodes: list[Barcode] = Field(default_factory=list)
    structured: StructuredFields = Field(default_factory=StructuredFields)
    model_used: str = Field(description="Engines that actually produced text, e.g. 'ppocr+tesseract'.")
    processing_time_ms: float = 0.0
    stage_times_ms: dict[str, float] = Field(default_factory=dict)
    image_width: int = 0
    image_height: int = 0

    @property
    def words(self) -> list[Word]:
        """All words of all lines, in reading order."""
        return [word for line in self.lines for word in line.words]
