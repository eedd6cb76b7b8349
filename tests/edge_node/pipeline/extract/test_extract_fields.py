"""The extraction entry point: dispatch by document type."""

from edge_node.pipeline.extract import extract_fields
from shared_models.ocr import Barcode, BoundingBox, DocumentType, Line


def _line(text: str, y: int, height: int = 20) -> Line:
    return Line(text=text, confidence=0.9, bounding_box=BoundingBox(x=0, y=y, width=300, height=height), engine="t")


_GS1 = Barcode(
    type="DATA_MATRIX",
    value="(01)09501101530003(17)271200(10)AB12",
    confidence=0.97,
    bounding_box=BoundingBox(x=0, y=300, width=100, height=100),
    decoder="zxing-cpp",
    gs1={"01": "09501101530003", "17": "271200", "10": "AB12"},
)


def test_barcode_type_returns_only_barcode_fields() -> None:
    lines = [_line("Chocolate", 10, 40), _line("Tk 120", 60)]
    fields = extract_fields(DocumentType.BARCODE, lines, [_GS1])
    assert fields.barcode == "09501101530003"
    assert fields.expiry_date == "2027-12-31"
    assert fields.product_name is None
    assert fields.price is None
    assert set(fields.confidence) == {"barcode", "expiry_date"}


def test_barcode_type_without_gs1_uses_the_value() -> None:
    code = Barcode(
        type="QR_CODE", value="hello", confidence=0.9, bounding_box=BoundingBox(x=0, y=0, width=9, height=9),
        decoder="zbar",
    )  # fmt: skip
    assert extract_fields(DocumentType.BARCODE, [], [code]).barcode == "hello"
    assert extract_fields(DocumentType.BARCODE, [], []).barcode is None


def test_dispatch_by_type() -> None:
    lines = [_line("CORNER SHOP SDN BHD", 10), _line("DATE: 05/01/2018", 40), _line("TOTAL RM 12.00", 70)]
    product = extract_fields(DocumentType.PRODUCT, lines, [_GS1])
    assert product.barcode == "09501101530003"
    assert product.merchant is None
    receipt = extract_fields(DocumentType.RECEIPT, lines, [])
    assert (receipt.merchant, receipt.date, receipt.total) == ("CORNER SHOP SDN BHD", "2018-01-05", 12.0)
    invoice = extract_fields(DocumentType.INVOICE, lines, [])
    assert (invoice.vendor, invoice.date, invoice.total) == ("CORNER SHOP SDN BHD", "2018-01-05", 12.0)
    assert invoice.merchant is None
