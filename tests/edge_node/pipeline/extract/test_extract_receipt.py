"""Receipts written by hand: labels and amounts as separate boxes on one row, as OCR engines return them."""

import pytest

from edge_node.pipeline.extract.receipt import extract_receipt
from shared_models.ocr import BoundingBox, Line


def _line(text: str, x: int, y: int, width: int = 200, height: int = 20) -> Line:
    return Line(text=text, confidence=0.9, bounding_box=BoundingBox(x=x, y=y, width=width, height=height), engine="t")


def _receipt() -> list[Line]:
    rows: list[tuple[str, ...]] = [
        ("AHMAD STORES",),
        ("KEDAI RUNCIT MAJU SDN BHD (123456-X)",),
        ("NO 12, JALAN MAWAR 3,",),
        ("43000 KAJANG, SELANGOR",),
        ("TEL: 03-8734 1122",),
        ("GST ID: 000123456789",),
        ("TAX INVOICE",),
        ("DATE: 05/01/2018", "TIME: 10:22"),
        ("ITEM", "QTY", "AMOUNT"),
        ("MILO 1KG", "1", "18.90"),
        ("BREAD", "2", "5.00"),
        ("SUB TOTAL", "23.90"),
        ("GST 6%", "1.43"),
        ("ROUNDING", "0.02"),
        ("TOTAL", "RM 25.35"),
        ("CASH", "50.00"),
        ("CHANGE", "24.65"),
        ("GST SUMMARY",),
        ("SR @ 6%", "23.90", "1.43"),
        ("TOTAL", "23.90", "1.43"),
        ("THANK YOU. PLEASE COME AGAIN",),
    ]
    lines: list[Line] = []
    for number, row in enumerate(rows):
        for column, text in enumerate(row):
            lines.append(_line(text, x=10 + 220 * column, y=10 + 30 * number))
    return lines


def test_full_receipt() -> None:
    fields = extract_receipt(_receipt())
    assert fields.merchant == "KEDAI RUNCIT MAJU SDN BHD"
    assert fields.address == "NO 12, JALAN MAWAR 3 43000 KAJANG, SELANGOR"
    assert fields.date == "2018-01-05"
    assert fields.total == 25.35
    assert fields.tax == 1.43
    assert fields.currency == "MYR"
    assert [(i.name, i.quantity, i.price) for i in fields.items] == [("MILO 1KG", 1.0, 18.9), ("BREAD", 2.0, 5.0)]
    for key in ("merchant", "date", "total", "tax", "currency"):
        assert 0.0 < fields.confidence[key] <= 1.0


def test_rounded_total_wins_over_grand_total() -> None:
    lines = [
        _line("KOPI CORNER", 10, 10),
        _line("GRAND TOTAL :", 10, 40),
        _line("87.08", 300, 41),
        _line("ROUNDING ADJUSTMENT:", 10, 70),
        _line("0.02", 300, 71),
        _line("NET TOTAL :", 10, 100),
        _line("87.10", 300, 100),
    ]
    assert extract_receipt(lines).total == 87.1


def test_cash_minus_change_decides_between_totals() -> None:
    lines = [
        _line("FRESH MART", 10, 10),
        _line("TOTAL SALES (EXCLUDING GST) : 80.91", 10, 40, width=400),
        _line("TOTAL : 85.00", 10, 70),
        _line("TOTAL : 80.90", 10, 100),
        _line("CASH : 100.00", 10, 130),
        _line("CHANGE : 19.10", 10, 160),
    ]
    fields = extract_receipt(lines)
    assert fields.total == 80.9
    unchecked = extract_receipt(lines[:4])
    assert unchecked.total == 80.9  # the later of two equal labels
    assert fields.confidence["total"] > unchecked.confidence["total"]


def test_subtotal_and_cash_change_when_no_total_label() -> None:
    lines = [
        _line("SUNRISE CAFE", 10, 10),
        _line("SUBTOTAL", 10, 40),
        _line("28.70", 300, 42),
        _line("CASH", 10, 70),
        _line("100.00", 300, 70),
        _line("CHANGE", 10, 100),
        _line("71.30", 300, 100),
    ]
    assert extract_receipt(lines).total == 28.7


def test_bengali_receipt() -> None:
    lines = [
        _line("রহমান জেনারেল স্টোর", 10, 10),
        _line("তারিখ: ১২/০৩/২০২৪", 10, 40),
        _line("চাল ৫ কেজি ৪৫০.০০", 10, 70),
        _line("মোট: ৳৫২০", 10, 100),
    ]
    fields = extract_receipt(lines)
    assert fields.merchant == "রহমান জেনারেল স্টোর"
    assert fields.date == "2024-03-12"
    assert fields.total == 520.0
    assert fields.currency == "BDT"


@pytest.mark.parametrize(
    "label",
    ["TOTAL", "GRAND TOTAL", "NET TOTAL", "TOTAL (INCL GST)", "ROUNDED TOTAL", "AMOUNT DUE", "TOTAL RM", "মোট"],
)
def test_total_labels(label: str) -> None:
    lines = [
        _line("SHOP", 10, 10),
        _line("ITEM A 3.00", 10, 40),
        _line(label, 10, 70),
        _line("12.50", 300, 70),
    ]
    assert extract_receipt(lines).total == 12.5


def test_not_totals() -> None:
    lines = [
        _line("SHOP", 10, 10),
        _line("TOTAL QTY: 3", 10, 40),
        _line("TOTAL GST 0.71", 10, 70),
        _line("TOTAL 12.50", 10, 100),
        _line("TOTAL SAVING 2.00", 10, 130),
    ]
    fields = extract_receipt(lines)
    assert fields.total == 12.5
    assert fields.tax == 0.71


def test_empty_receipt() -> None:
    fields = extract_receipt([])
    assert fields.total is None
    assert fields.merchant is None
    assert fields.items == []
