"""ZakPOS OCR edge node: the in-shop OCR server."""

__version__ = "0.1.0"
