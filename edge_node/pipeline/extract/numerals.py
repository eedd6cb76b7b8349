"""Numeric text: Bengali digits to ASCII, parsing numbers with thousands/decimal separators, check digits."""

from __future__ import annotations

import re

# Bengali digits (U+09E6..U+09EF) mapped to ASCII so every later regex only has to know 0-9.
_BENGALI_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")

# A bare number as printed on tags and receipts: "1,234.50", "1.234,50", "12.50", ".20", "1,00,000" (lakh grouping).
# A leading-separator number must not follow a letter: in "Rs.50" the "." belongs to "Rs.".
NUMBER_PATTERN = r"(?:\d[\d,.]*\d|\d|(?<![A-Za-z])[.,]\d{1,2}(?![\d,.]))"

_GROUPS_OF_THREE = re.compile(r"^\d{1,3}(?:[.,]\d{3})+$")
# Indian/Bangladeshi lakh grouping: the last group has three digits, the others two ("1,23,456").
_LAKH_GROUPS = re.compile(r"^\d{1,2}(?:,\d{2})+,\d{3}$")
# Barcode lengths with a mod-10 check digit: EAN-8, UPC-A, EAN-13, GTIN-14.
_GTIN_LENGTHS = (8, 12, 13, 14)


def to_ascii_digits(text: str) -> str:
    """Replace Bengali digits with ASCII digits; everything else is left as it is."""
    return text.translate(_BENGALI_DIGITS)


def digit_ratio(text: str) -> float:
    """Share of the non-space characters that are digits (0.0 for blank text)."""
    chars = [c for c in to_ascii_digits(text) if not c.isspace()]
    if not chars:
        return 0.0
    return sum(c.isdigit() for c in chars) / len(chars)


def letter_count(text: str) -> int:
    """Number of letters (any script, combining marks included) in the text."""
    return sum(1 for c in text if c.isalpha() or _is_bengali_mark(c))


def _is_bengali_mark(char: str) -> bool:
    """Bengali vowel signs and the virama are not `isalpha()` but are part of words."""
    return "\u0980" <= char <= "\u09ff" and not char.isdigit() and char not in "\u09f2\u09f3"


def parse_number(token: str) -> float | None:
    """Parse one number token, working out which of ',' and '.' is the decimal separator.

    "1,234.50" and "1.234,50" -> 1234.5; "12,50" -> 12.5; "1,234" -> 1234; "1,00,000" -> 100000; ".20" -> 0.2.
    A single '.' is always decimal ("2.200" is a fuel price, not two thousand two hundred).
    """
    text = to_ascii_digits(token.strip())
    if not text or not re.fullmatch(r"[\d.,]+", text) or not any(c.isdigit() for c in text):
        return None
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        head, _, tail = text.rpartition(decimal)
        if decimal in head or not tail.isdigit():
            return None
        head = head.replace(thousands, "")
        return _to_float(f"{head}.{tail}")
    if "," in text:
        if _GROUPS_OF_THREE.match(text) or _LAKH_GROUPS.match(text):
            return _to_float(text.replace(",", ""))
        head, _, tail = text.rpartition(",")
        if "," in head or not 1 <= len(tail) <= 2:
            return None
        return _to_float(f"{head or '0'}.{tail}")
    if text.count(".") > 1:
        if _GROUPS_OF_THREE.match(text):
            return _to_float(text.replace(".", ""))
        return None
    if text.startswith("."):
        text = "0" + text
    return _to_float(text)


def _to_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def has_valid_check_digit(digits: str) -> bool:
    """True for an EAN-8/UPC-A/EAN-13/GTIN-14 digit string whose last digit is the GS1 mod-10 check digit."""
    if not digits.isdigit() or len(digits) not in _GTIN_LENGTHS:
        return False
    body, check = digits[:-1], int(digits[-1])
    # GS1 weights alternate 3,1,3,... starting from the digit next to the check digit.
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check
