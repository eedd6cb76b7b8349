"""Invoices written by hand."""

from edge_node.pipeline.extract.invoice import extract_invoice
from shared_models.ocr import BoundingBox, Line


def _line(text: str, x: int, y: int) -> Line:
    return Line(text=text, confidence=0.9, bounding_box=BoundingBox(x=x, y=y, width=220, height=20), engine="t")


def _stack(*texts: str) -> list[Line]:
    return [_line(text, 10, 10 + 30 * i) for i, text in enumerate(texts)]


def test_invoice_fields() -> None:
    lines = _stack(
        "ACME TRADING LTD",
        "12 Road 5, Dhanmondi, Dhaka 1209",
        "INVOICE",
        "Invoice No: INV-2024-0042",
        "Invoice Date: 05/03/2024",
        "Due Date: 04/04/2024",
        "Widget x 2   200.00",
        "VAT 15%   30.00",
        "TOTAL DUE  BDT 230.00",
    )
    fields = extract_invoice(lines)
    assert fields.vendor == "ACME TRADING LTD"
    assert fields.invoice_number == "INV-2024-0042"
    assert fields.date == "2024-03-05"
    assert fields.due_date == "2024-04-04"
    assert fields.total == 230.0
    assert fields.tax == 30.0
    assert fields.currency == "BDT"
    assert set(fields.confidence) >= {"vendor", "invoice_number", "date", "due_date", "total", "tax", "currency"}


def test_invoice_number_beside_its_label_and_no_due_date() -> None:
    lines = [
        _line("NORTHWIND SUPPLIES PTE", 10, 10),
        _line("INV NO.", 10, 40),
        _line(": SP3-01-147902", 260, 40),
        _line("DATE", 10, 70),
        _line(": 17/06/2018", 260, 70),
        _line("AMOUNT DUE", 10, 100),
        _line("$1,250.00", 260, 100),
    ]
    fields = extract_invoice(lines)
    assert fields.invoice_number == "SP3-01-147902"
    assert fields.date == "2018-06-17"
    assert fields.due_date is None
    assert fields.total == 1250.0
    assert fields.currency == "USD"


def test_bengali_invoice_number() -> None:
    fields = extract_invoice(_stack("করিম এন্টারপ্রাইজ লিমিটেড", "চালান নং: ১২৩৪৫", "মোট: ৳১,৫০০"))
    assert fields.invoice_number == "12345"
    assert fields.total == 1500.0
    assert fields.vendor == "করিম এন্টারপ্রাইজ লিমিটেড"
