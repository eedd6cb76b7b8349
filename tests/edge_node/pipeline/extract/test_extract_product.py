"""Product labels and price tags."""

import pytest

from edge_node.pipeline.extract.product import extract_product
from shared_models.ocr import Barcode, BoundingBox, Line


def _lines(*specs: str | tuple[str, int]) -> list[Line]:
    """Lines stacked top to bottom; a (text, height) spec sets the font size (default 20 px)."""
    out: list[Line] = []
    y = 10
    for spec in specs:
        text, height = spec if isinstance(spec, tuple) else (spec, 20)
        box = BoundingBox(x=10, y=y, width=300, height=height)
        out.append(Line(text=text, confidence=0.9, bounding_box=box, engine="test"))
        y += height + 8
    return out


def _barcode(value: str, kind: str = "EAN_13", gs1: dict[str, str] | None = None) -> Barcode:
    box = BoundingBox(x=0, y=400, width=200, height=80)
    return Barcode(type=kind, value=value, confidence=0.99, bounding_box=box, decoder="zxing-cpp", gs1=gs1)


def test_bengali_label() -> None:
    fields = extract_product(_lines(("চাল ৫ কেজি", 40), "মূল্য: ৳৪৫০"), [])
    assert fields.product_name == "চাল ৫ কেজি"
    assert fields.price == 450.0
    assert fields.currency == "BDT"
    assert (fields.quantity, fields.unit) == (5.0, "kg")
    assert set(fields.confidence) >= {"product_name", "price", "currency", "quantity"}
    assert all(0.0 <= c <= 1.0 for c in fields.confidence.values())


def test_packaged_food_label_without_barcode_image() -> None:
    lines = _lines(
        "NESTLE",
        ("MAGGI 2-MINUTE NOODLES", 48),
        "Net Wt. 496g (8 x 62g)",
        "MRP Tk 120/-",
        "MFG 01/2025 EXP 12/2026",
        "Batch No. 4521",
        "8 901058 851427",
    )
    fields = extract_product(lines, [])
    assert fields.product_name == "MAGGI 2-MINUTE NOODLES"
    assert fields.price == 120.0
    assert fields.currency == "BDT"
    assert (fields.quantity, fields.unit) == (496.0, "g")
    assert fields.expiry_date == "2026-12-31"  # EXP wins over MFG; month-year means the month's last day
    assert fields.barcode == "8901058851427"  # printed, with a valid check digit


def test_decoded_barcode_fills_when_none_is_printed() -> None:
    fields = extract_product(_lines(("Fresh Milk", 40), "1 L", ("RM 6.90", 36)), [_barcode("9555123456786")])
    assert fields.barcode == "9555123456786"
    assert fields.confidence["barcode"] == pytest.approx(0.99)
    assert fields.price == 6.9
    assert fields.currency == "MYR"
    assert (fields.quantity, fields.unit) == (1.0, "l")


def test_printed_code_with_bad_check_digit_is_not_a_barcode() -> None:
    fields = extract_product(_lines(("Soap", 40), "4006381333932", "Tk 45"), [])
    assert fields.barcode is None
    assert fields.price == 45.0


def test_gs1_barcode_gives_gtin_and_expiry() -> None:
    gs1 = {"01": "09501101530003", "17": "270200", "10": "L1"}
    lines = _lines(("Yogurt", 40), "Best before 03/26", "$2.49")
    fields = extract_product(lines, [_barcode("(01)09501101530003(17)270200(10)L1", "DATA_MATRIX", gs1)])
    assert fields.barcode == "09501101530003"
    assert fields.expiry_date == "2027-02-28"  # GS1 AI 17 beats the printed date; DD=00 is the month's end
    assert fields.price == 2.49
    assert fields.currency == "USD"


def test_qr_url_is_not_a_product_barcode() -> None:
    fields = extract_product(_lines(("Tea", 40)), [_barcode("https://example.com/p/1", "QR_CODE")])
    assert fields.barcode is None


def test_price_prefers_currency_over_bigger_bare_numbers() -> None:
    lines = _lines(("500", 60), ("Coca-Cola", 40), "500 ml", "Price: Tk 40")
    fields = extract_product(lines, [])
    assert fields.price == 40.0
    assert fields.product_name == "Coca-Cola"
    assert (fields.quantity, fields.unit) == (500.0, "ml")


def test_price_tag_largest_money_like_number() -> None:
    fields = extract_product(_lines(("BANANA", 30), ("12.90", 70), "per kg", "Item code 55310"), [])
    assert fields.product_name == "BANANA"
    assert fields.price == 12.9
    assert fields.sku == "55310"


def test_sku_and_piece_count() -> None:
    fields = extract_product(_lines(("AA Batteries", 40), "12 pcs", "SKU: BAT-AA-12", "€ 7,99"), [])
    assert fields.sku == "BAT-AA-12"
    assert (fields.quantity, fields.unit) == (12.0, "pcs")
    assert fields.price == 7.99
    assert fields.currency == "EUR"


def test_expiry_label_on_the_line_before_the_date() -> None:
    fields = extract_product(_lines(("Juice", 40), "EXP:", "12.03.27"), [])
    assert fields.expiry_date == "2027-03-12"


def test_only_a_manufacture_date_is_no_expiry() -> None:
    fields = extract_product(_lines(("Biscuits", 40), "MFG: 05/01/2025"), [])
    assert fields.expiry_date is None


def test_nothing_to_find() -> None:
    fields = extract_product([], [])
    assert fields.product_name is None
    assert fields.price is None
    assert fields.confidence == {}
