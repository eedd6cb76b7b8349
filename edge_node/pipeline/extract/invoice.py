"""Invoice fields: invoice number, issue and due dates, vendor, total, tax and currency.

Invoices share the receipt's layout problems (labels and values on one row as separate lines), so the total, tax,
vendor and date rules are the receipt's; this module adds the invoice number and the due date.
"""

from __future__ import annotations

import re

from edge_node.pipeline.extract import layout
from edge_node.pipeline.extract.dates import normalise
from edge_node.pipeline.extract.layout import Found
from edge_node.pipeline.extract.money import document_currency
from edge_node.pipeline.extract.receipt import find_merchant, find_receipt_date, find_tax, find_total
from shared_models.ocr import Line, StructuredFields

# "Invoice No: INV-2024-001", "INV# 003621900059183", "Bill No. 77", "চালান নং ১২৩".
_NUMBER_LABEL = re.compile(
    r"(?<![A-Z])(?:TAX\s*)?(?:INVOICE|INV|BILL)(?![A-Z])[\s.]*(?:NO\b|NUMBER|NUM\b)?[\s.:#]*|"
    r"(?<![A-Z])RECEIPT[\s.]*(?:NO\b|NUMBER|#)[\s.:#]*|"
    r"চালান\s*(?:নং|নম্বর)?[\s.:#]*",
    re.IGNORECASE,
)
# An invoice number has at least one digit; letters, dashes and slashes are common ("SP3-01-147902", "3521/06").
_NUMBER_VALUE = re.compile(r"[A-Z0-9](?:[A-Z0-9/]|\s?-\s?)*\d(?:[A-Z0-9/]|\s?-\s?(?=[A-Z0-9]))*", re.IGNORECASE)
# Words after the label that mean the line is not a number field ("INVOICE DATE", "TAX INVOICE OF GST").
_NOT_NUMBER = re.compile(r"DATE|TOTAL|AMOUNT|TO\b|ADDRESS|OF\b", re.IGNORECASE)


def extract_invoice(lines: list[Line]) -> StructuredFields:
    """Structured fields of an invoice from its lines in reading order."""
    fields = StructuredFields()
    conf: dict[str, float] = {}
    number = find_invoice_number(lines)
    if number is not None:
        fields.invoice_number, conf["invoice_number"] = number.value, number.confidence
    issued = find_receipt_date(lines, labels=("date",))
    if issued is not None:
        fields.date, conf["date"] = issued.value, issued.confidence
    due = find_due_date(lines)
    if due is not None and due.value != fields.date:
        fields.due_date, conf["due_date"] = due.value, due.confidence
    vendor = find_merchant(lines)
    if vendor is not None:
        fields.vendor, conf["vendor"] = vendor.value, vendor.confidence
    total = find_total(lines)
    if total is not None:
        fields.total, conf["total"] = total.value, total.confidence
    tax = find_tax(lines, fields.total)
    if tax is not None:
        fields.tax, conf["tax"] = tax.value, tax.confidence
    fields.currency = document_currency(line.text for line in lines)
    if fields.currency is not None:
        conf["currency"] = 0.8
    fields.confidence = {key: round(value, 3) for key, value in conf.items()}
    return fields


def find_invoice_number(lines: list[Line]) -> Found[str] | None:
    """The value after an INVOICE NO/INV#/BILL NO label: on the same line, or the next line on its row."""
    for index, line in enumerate(lines):
        text = normalise(line.text)
        for label in _NUMBER_LABEL.finditer(text):
            rest = text[label.end() :]
            if _NOT_NUMBER.match(rest):
                continue
            value = _NUMBER_VALUE.match(rest.strip())
            if value is not None:
                return Found(_compact(value.group(0)), line.confidence * 0.9, index)
            if rest.strip():
                continue
            for right in layout.right_of(lines, index):
                value = _NUMBER_VALUE.search(normalise(lines[right].text))
                if value is not None:
                    return Found(_compact(value.group(0)), lines[right].confidence * 0.8, right)
                break
    return None


def find_due_date(lines: list[Line]) -> Found[str] | None:
    """A date labelled DUE / DUE DATE / PAYMENT DUE / PAY BY."""
    return find_receipt_date(lines, labels=("due",), fallback=False)


def _compact(value: str) -> str:
    """Drop the spaces OCR puts around dashes ("V015- 673381" -> "V015-673381")."""
    return re.sub(r"\s", "", value)
