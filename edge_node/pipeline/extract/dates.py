"""Dates in printed text: numeric, month-name (English and Bengali) and month-year forms, with their labels.

Every date comes back as ISO 8601 (YYYY-MM-DD). Ambiguous numeric dates are read day-first (Bangladesh,
Malaysia, UK) unless one of the first two numbers cannot be a month. Month-year dates ("EXP 12/2027") mean the
last day of that month. Only dates that exist are returned.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Literal

from edge_node.pipeline.extract.numerals import to_ascii_digits

Precision = Literal["day", "month"]

# Month names as printed on labels and receipts; Bengali spellings include the common long-vowel variants.
_MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
    "জানুয়ারি": 1, "জানুয়ারী": 1, "ফেব্রুয়ারি": 2, "ফেব্রুয়ারী": 2, "মার্চ": 3, "এপ্রিল": 4, "মে": 5,
    "জুন": 6, "জুলাই": 7, "আগস্ট": 8, "আগষ্ট": 8, "সেপ্টেম্বর": 9, "অক্টোবর": 10, "নভেম্বর": 11, "ডিসেম্বর": 12,
}  # fmt: skip
_MONTH_KEYS = {unicodedata.normalize("NFC", k): v for k, v in _MONTHS.items()}
_MONTH_ALT = "|".join(sorted((re.escape(k) for k in _MONTH_KEYS), key=len, reverse=True))
# A month name must not be glued to other letters ("MAR" in "MARKET"); Bengali letters include vowel signs.
_NOT_LETTER_BEFORE = r"(?<![A-Za-z\u0980-\u09e5])"
_NOT_LETTER_AFTER = r"(?![A-Za-z\u0980-\u09e5])"
_MONTH = rf"{_NOT_LETTER_BEFORE}(?P<mon>{_MONTH_ALT}){_NOT_LETTER_AFTER}"
_ORDINAL = r"(?:st|nd|rd|th)?"
# OCR often glues the time to a four-digit year ("10-03-201823:03:06"); a following "HH:MM" may touch it.
_GLUED_TIME = r"(?=\d{1,2}:\d{2})"
_YEAR = rf"(?P<y>\d{{4}}{_GLUED_TIME}|\d{{4}}(?!\d)|'?\d{{2}}(?!\d))"

# Most specific first: an earlier pattern's match hides any overlapping later match.
_FULL_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"(?<![\d.,])(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?!\d)",
        r"(?<![\d.,])(?P<a>\d{1,2})\s?(?P<sep>[-/.])\s?(?P<b>\d{1,2})\s?(?P=sep)\s?"
        rf"(?P<y>\d{{4}}{_GLUED_TIME}|(?:\d{{4}}|\d{{2}})(?!\d|\.\d))",
        rf"(?<!\d)(?P<d>\d{{1,2}}){_ORDINAL}[\s\-/.,]*{_MONTH}[\s\-/.,]*{_YEAR}",
        rf"{_MONTH}[\s\-/.]*(?P<d>\d{{1,2}}){_ORDINAL}[\s,\-/.]+{_YEAR}",
    )
)
_MONTH_YEAR_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        rf"{_MONTH}[\s\-/.,]*{_YEAR}",
        r"(?<![\d.,/-])(?P<y>\d{4})[-/](?P<m>\d{1,2})(?![\d/-])",
        # "." is left out here: "12.50" is a price far more often than December 2050.
        r"(?<![\d.,/-])(?P<m>\d{1,2})\s?[-/]\s?(?P<y>\d{4}|\d{2})(?![\d/]|[.,]\d)",
    )
)

# Labels that say what a date means. Longer alternatives first so "EXPIRY DATE" is not read as "EXP".
_LABELS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(rf"(?<![A-Za-z])(?:{alts})(?![A-Za-z])", re.IGNORECASE))
    for kind, alts in (
        ("expiry", r"exp(?:iry|iration|ires|ired)?(?:\s*date)?|e\s?x\s?p|best\s*before(?:\s*end)?|bbe?|"
                   r"use\s*(?:by|before)|consume\s*(?:by|before)|valid\s*(?:until|till|thru)"),
        ("made", r"(?:mfg|mfd|manufactur\w*|pkd|pkg|packed|packing|prod(?:uced|uction)?|dom)"
                 r"(?:\.?\s*(?:date|on|dt))?"),
        ("due", r"due(?:\s*date)?|payment\s*due|pay\s*by"),
        ("date", r"date|dt|dated"),
    )
)  # fmt: skip
_BENGALI_LABELS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("expiry", re.compile(unicodedata.normalize("NFC", "মেয়াদ|মেয়াদোত্তীর্ণ|ব্যবহারের শেষ"))),
    ("made", re.compile(unicodedata.normalize("NFC", "উৎপাদন|উৎপাদনের|প্যাকিং"))),
    ("date", re.compile("তারিখ")),
)
# A label only applies to a date that follows it closely ("EXP: 12/2027"), not one further along the line.
_MAX_LABEL_GAP = 16


@dataclass(frozen=True)
class DateMatch:
    """One date found in a text: ISO value, span in the (normalised) text, precision and label kind."""

    iso: str
    start: int
    end: int
    precision: Precision
    label: str | None


def normalise(text: str) -> str:
    """NFC-normalise (so Bengali spellings compare equal) and turn Bengali digits into ASCII."""
    return to_ascii_digits(unicodedata.normalize("NFC", text))


def find_dates(text: str, *, month_year: bool = True) -> list[DateMatch]:
    """All dates in the text, in order. Month-year forms are included unless `month_year` is False."""
    norm = normalise(text)
    found: list[DateMatch] = []
    taken: list[tuple[int, int]] = []
    patterns: list[tuple[re.Pattern[str], Precision]] = [(p, "day") for p in _FULL_PATTERNS]
    if month_year:
        patterns += [(p, "month") for p in _MONTH_YEAR_PATTERNS]
    for pattern, precision in patterns:
        for match in pattern.finditer(norm):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            iso = _to_iso(match.groupdict())
            if iso is None:
                continue
            taken.append((match.start(), match.end()))
            found.append(DateMatch(iso, match.start(), match.end(), precision, _label_before(norm, match.start())))
    return sorted(found, key=lambda m: m.start)


def parse_date(text: str) -> str | None:
    """The first full (day-precision) date in the text as ISO, or None."""
    for match in find_dates(text, month_year=False):
        return match.iso
    return None


def label_at_end(text: str) -> str | None:
    """The label kind when a line ends with a date label ("EXP:"), for dates printed on the next line."""
    norm = normalise(text).rstrip(" :.-#")
    for kind, pattern in _LABELS + _BENGALI_LABELS:
        for match in pattern.finditer(norm):
            if match.end() == len(norm):
                return kind
    return None


def gs1_date(yymmdd: str) -> str | None:
    """A GS1 date (AI 11/13/15/17: YYMMDD, DD=00 meaning the last day of the month) as ISO, or None."""
    if not re.fullmatch(r"\d{6}", yymmdd):
        return None
    year, month, day = 2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    if not 1 <= month <= 12:
        return None
    if day == 0:
        day = calendar.monthrange(year, month)[1]
    return _valid(year, month, day)


def _to_iso(groups: dict[str, str | None]) -> str | None:
    year_text = (groups.get("y") or "").lstrip("'")
    if not year_text:
        return None
    year = int(year_text) + (2000 if len(year_text) == 2 else 0)
    if not 1900 <= year <= 2199:
        return None
    mon = groups.get("mon")
    month = _MONTH_KEYS.get(mon.lower()) if mon else None
    if month is None and groups.get("m"):
        month = int(groups["m"] or 0)
    if groups.get("a") and groups.get("b"):
        first, second = int(groups["a"] or 0), int(groups["b"] or 0)
        # Day-first, unless the second number cannot be a month (then it is the day: US order).
        day, month = (second, first) if second > 12 >= first else (first, second)
        return _valid(year, month, day)
    if month is None:
        return None
    if groups.get("d"):
        return _valid(year, month, int(groups["d"] or 0))
    if not 1 <= month <= 12:
        return None
    return _valid(year, month, calendar.monthrange(year, month)[1])


def _valid(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _label_before(norm: str, start: int) -> str | None:
    best: tuple[tuple[int, int], str] | None = None
    for kind, pattern in _LABELS + _BENGALI_LABELS:
        for match in pattern.finditer(norm, 0, start):
            gap = start - match.end()
            # The nearest label wins; on a tie the longer one ("EXPIRY DATE" over "DATE").
            key = (match.end(), -match.start())
            if 0 <= gap <= _MAX_LABEL_GAP and (best is None or key > best[0]):
                best = (key, kind)
    return best[1] if best else None
