"""Field normalisers for scoring: dates, money amounts, names and prices.

These are deliberately independent of the pipeline's own extractors (``edge_node.pipeline.extract``): the bench
must not grade the node with the node's code.

* **Dates** become ISO ``YYYY-MM-DD`` strings. Accepted: ``YYYY-MM-DD`` (also with / or .), numeric
  day-month-year with / - . or space (``25/12/2018``, ``18/03/18``, ``10-03-2018``), month names
  (``14 MAR 2018``, ``24-MAR-2018``, ``15/APR/2017``, ``March 14, 2018``). Numeric dates are read day first (the
  receipts are Malaysian); when that is not a valid date but month first is (``12/13/2016``), month first is used.
  Two-digit years are 20YY. The first date found in the text wins; no date gives ``None``.
* **Amounts** become ``Decimal`` rounded to cents: currency marks (``RM``, ``$``...) and thousands commas are
  dropped and the first number is taken (``RM1,234.5`` -> ``1234.50``). Floats go through ``str`` first.
* **Names** (company, address): upper-cased, whitespace trimmed and collapsed.
* **Prices** (yen shelf tags): NFKC (full-width digits and ``￥`` fold to ASCII), ``¥``, ``円`` and commas dropped;
  a number is a digit run with an optional decimal part, and its value is the integer part without leading zeros
  (yen prices are whole; ``214.92`` reads as ``214``). A structured price is formatted the same way.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from bench.metrics import collapse_ws

_MONTHS = {
    name: index
    for index, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
_MONTH_WORD = r"([A-Za-z]{3,9})\.?"
_SEP = r"\s*[-/.]\s*|\s+"
_ISO = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_NUMERIC = re.compile(rf"(?<!\d)(\d{{1,2}})(?:{_SEP})(\d{{1,2}})(?:{_SEP})(\d{{4}}|\d{{2}})(?!\d)")
_DAY_MONTH_NAME = re.compile(rf"(?<!\d)(\d{{1,2}})(?:{_SEP})?{_MONTH_WORD}(?:\s*[-/.,]\s*|\s*)(\d{{4}}|\d{{2}})(?!\d)")
_MONTH_NAME_DAY = re.compile(rf"{_MONTH_WORD}\s+(\d{{1,2}}),?\s+(\d{{4}})(?!\d)")

_CENT = Decimal("0.01")
_AMOUNT = re.compile(r"\d+(?:\.\d+)?")
_PRICE_DROP = re.compile(r"[¥円,]")
_WHITESPACE = re.compile(r"\s+")
_PURE_PRICE = re.compile(r"\d{1,5}")


def _month(word: str) -> int | None:
    """Month number of an English month name or its 3-letter (or SEPT) abbreviation."""
    word = word.upper()
    index = _MONTHS.get(word[:3])
    if index is None:
        return None
    full = dt.date(2000, index, 1).strftime("%B").upper()
    return index if full.startswith(word) or word == "SEPT" else None


def _year(text: str) -> int:
    return int(text) + 2000 if len(text) == 2 else int(text)


def _make(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_date(text: str | None) -> str | None:
    """The first date in ``text`` as ``YYYY-MM-DD``, or None (see the module docstring for the formats)."""
    if not text:
        return None
    found: list[tuple[int, dt.date]] = []
    for match in _ISO.finditer(text):
        date = _make(int(match[1]), int(match[2]), int(match[3]))
        if date:
            found.append((match.start(), date))
    for match in _NUMERIC.finditer(text):
        first, second, year = int(match[1]), int(match[2]), _year(match[3])
        date = _make(year, second, first) or _make(year, first, second)
        if date:
            found.append((match.start(), date))
    for match in _DAY_MONTH_NAME.finditer(text):
        month = _month(match[2])
        date = _make(_year(match[3]), month, int(match[1])) if month else None
        if date:
            found.append((match.start(), date))
    for match in _MONTH_NAME_DAY.finditer(text):
        month = _month(match[1])
        date = _make(int(match[3]), month, int(match[2])) if month else None
        if date:
            found.append((match.start(), date))
    if not found:
        return None
    return min(found, key=lambda hit: hit[0])[1].isoformat()


def parse_amount(value: str | float | None) -> Decimal | None:
    """A money amount rounded to cents, or None when there is no number."""
    if value is None:
        return None
    text = str(value) if isinstance(value, int | float) else unicodedata.normalize("NFKC", value).replace(",", "")
    match = _AMOUNT.search(text)
    if not match:
        return None
    try:
        return Decimal(match[0]).quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None


def normalize_name(text: str | None) -> str:
    """Upper-case, trim and collapse whitespace; None becomes ''."""
    return collapse_ws(text or "").upper()


def _price_value(number: str) -> str:
    """Integer part without leading zeros ('0' for zero)."""
    return number.split(".")[0].lstrip("0") or "0"


def price_numbers(text: str, drop_spaces: bool = True) -> list[str]:
    """Every number in ``text`` after price normalisation, as integer-part strings, in reading order."""
    text = _PRICE_DROP.sub("", unicodedata.normalize("NFKC", text))
    if drop_spaces:
        text = _WHITESPACE.sub("", text)
    return [_price_value(match[0]) for match in _AMOUNT.finditer(text)]


def format_price(value: float) -> str:
    """A structured price as a price string: the integer part (yen are whole)."""
    return _price_value(f"{value:.2f}")


def prominent_price(lines: Sequence[tuple[str, float]], structured_price: float | None) -> str | None:
    """The most prominent price on a tag.

    ``lines`` are (text, line box height). The structured price wins when present; otherwise the tallest line that
    holds a number (earlier line on ties) and, within it, the number with the most digits (earlier on ties).
    """
    if structured_price is not None:
        return format_price(structured_price)
    ranked = sorted(enumerate(lines), key=lambda item: (-item[1][1], item[0]))
    for _, (text, _height) in ranked:
        numbers = price_numbers(text)
        if numbers:
            return max(numbers, key=len)
    return None


def shelf_prices(texts: Sequence[str]) -> list[str]:
    """The prices on a shelf photo: each whitespace-separated token of each line that is a bare 1-5 digit price.

    ``¥``, ``円`` and commas are dropped first; a detector often merges a row of tags into one line (``'189 99'``).
    """
    prices = []
    for text in texts:
        for token in unicodedata.normalize("NFKC", text).split():
            compact = _PRICE_DROP.sub("", token)
            if _PURE_PRICE.fullmatch(compact):
                prices.append(_price_value(compact))
    return prices
