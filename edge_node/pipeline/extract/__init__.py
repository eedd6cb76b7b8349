"""Structured-field extraction: recognised lines (and decoded barcodes) in, `StructuredFields` out.

Pure and synchronous: no I/O, no logging. One module per document type (product, receipt, invoice) on top of
shared parsers for numbers (numerals), money, dates and page geometry (layout).
"""

from __future__ import annotations

from edge_node.pipeline.extract.invoice import extract_invoice
from edge_node.pipeline.extract.product import barcode_fields, extract_product
from edge_node.pipeline.extract.receipt import extract_receipt
from shared_models.ocr import Barcode, DocumentType, Line, StructuredFields

__all__ = ["extract_fields"]


def extract_fields(doc_type: DocumentType, lines: list[Line], barcodes: list[Barcode]) -> StructuredFields:
    """Extract the fields of `doc_type` from lines in reading order and the decoded barcodes."""
    if doc_type is DocumentType.BARCODE:
        return barcode_fields(barcodes)
    if doc_type is DocumentType.PRODUCT:
        return extract_product(lines, barcodes)
    if doc_type is DocumentType.RECEIPT:
        return extract_receipt(lines)
    return extract_invoice(lines)
