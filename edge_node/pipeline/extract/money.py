"""Money in printed text: currency markers and amounts ("RM 9.00", "৳১২০", "Tk 120/-", "1.234,50 €")."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from edge_node.pipeline.extract.dates import find_dates, normalise
from edge_node.pipeline.extract.numerals import NUMBER_PATTERN, parse_number

# Currency markers -> ISO 4217. Letter codes must stand alone ("RM" but not the "RM" of "FORM").
_CURRENCY_MARKERS: tuple[tuple[str, str], ...] = (
    (r"৳|টাকা|\bBDT\b|(?<![A-Za-z])(?:Tk|TK|tk|Taka|TAKA)(?![A-Za-z])\.?", "BDT"),
    (r"(?<![A-Za-z])(?:RM|MYR)(?![A-Za-z])", "MYR"),
    (r"€|(?<![A-Za-z])EUR(?![A-Za-z])", "EUR"),
    (r"£|(?<![A-Za-z])GBP(?![A-Za-z])", "GBP"),
    (r"₹|(?<![A-Za-z])(?:Rs|RS|INR)(?![A-Za-z])\.?", "INR"),
    (r"¥|円|(?<![A-Za-z])JPY(?![A-Za-z])", "JPY"),
    (r"(?<![A-Za-z])(?:US\$|USD)(?![A-Za-z])|\$", "USD"),
)
_CURRENCY_RES = tuple((re.compile(p), code) for p, code in _CURRENCY_MARKERS)
_CURRENCY_ANY = re.compile("|".join(f"(?:{p})" for p, _ in _CURRENCY_MARKERS))
# "$" is also used generically (Malaysian POS software prints it for ringgit), so a named currency beats it.
_GENERIC_CODES = frozenset({"USD"})

_NUMBER_RE = re.compile(rf"(?<![0-9])(?P<num>{NUMBER_PATTERN})(?![0-9])")
_TIME_RE = re.compile(r"(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AP]\.?M\.?)?(?!\d)", re.IGNORECASE)
# A currency marker directly before or after a number, with at most a little padding ("RM 9.00", "5.00 RM").
_PREFIX_RE = re.compile(rf"(?:{_CURRENCY_ANY.pattern})\s{{0,2}}[:.]?\s{{0,2}}$")
_SUFFIX_RE = re.compile(rf"^\s{{0,2}}(?:{_CURRENCY_ANY.pattern})")
# Taka prices are often written "120/-" or "120/=" meaning "and no paisa".
_NO_PAISA_RE = re.compile(r"^\s?/[-=]")


@dataclass(frozen=True)
class Amount:
    """One amount in a text: signed value, currency if marked, span, and how many decimals were printed."""

    value: float
    currency: str | None
    start: int
    end: int
    decimals: int

    @property
    def explicit(self) -> bool:
        """True when the amount is marked as money (currency sign or two printed decimals)."""
        return self.currency is not None or self.decimals == 2


def detect_currency(text: str) -> str | None:
    """The ISO code of the first currency marker in the text, or None."""
    best: tuple[int, str] | None = None
    for pattern, code in _CURRENCY_RES:
        match = pattern.search(text)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), code)
    return best[1] if best else None


def document_currency(texts: Iterable[str]) -> str | None:
    """The currency a document uses: the most frequent marker, a named one beating a bare "$"."""
    votes: Counter[str] = Counter()
    for text in texts:
        for pattern, code in _CURRENCY_RES:
            votes[code] += len(pattern.findall(text))
    named = [(n, code) for code, n in votes.items() if n and code not in _GENERIC_CODES]
    if named:
        return max(named)[1]
    return next((code for code, n in votes.items() if n), None)


def find_amounts(text: str) -> list[Amount]:
    """Amounts in the text, left to right; dates, times, percentages and hyphenated ids are skipped."""
    norm = _mask_dates_and_times(normalise(text))
    amounts: list[Amount] = []
    for match in _NUMBER_RE.finditer(norm):
        amount = _amount_at(norm, match)
        if amount is not None:
            amounts.append(amount)
    return amounts


def parse_amount(text: str) -> float | None:
    """The value of the first amount in the text, or None."""
    amounts = find_amounts(text)
    return amounts[0].value if amounts else None


def _mask_dates_and_times(norm: str) -> str:
    """Hide dates, then times (which may be glued to a date's year), from the number scan."""
    chars = list(norm)
    for match in find_dates(norm, month_year=False):
        chars[match.start : match.end] = "#" * (match.end - match.start)
    masked = "".join(chars)
    return _TIME_RE.sub(lambda m: "#" * len(m.group(0)), masked)


def _amount_at(norm: str, match: re.Match[str]) -> Amount | None:
    token = match.group("num")
    start, end = match.span()
    value = parse_number(token)
    if value is None:
        return None
    after = norm[end:]
    if after.lstrip().startswith("%") or re.match(r"^-\d", after):
        return None  # a percentage or a hyphenated id/phone number ("07-3523888")
    before = norm[:start]
    sign = 1.0
    prefix = _PREFIX_RE.search(before)
    currency: str | None = None
    if prefix:
        currency = detect_currency(prefix.group(0))
        before_prefix = before[: prefix.start()]
        if before_prefix.endswith("-") or before_prefix.endswith("\u2212"):
            sign, start = -1.0, prefix.start() - 1
        else:
            start = prefix.start()
    elif before.endswith("-") or before.endswith("\u2212"):
        if re.search(r"\d\s?[-\u2212]$", before):
            return None  # second half of an id like "16-073042"
        sign, start = -1.0, start - 1
    elif re.search(r"[A-Za-z.,]$", before):
        return None  # glued to a word or number: a code such as "CS00031663", the "53" of "NO.53"
    suffix = _SUFFIX_RE.match(after)
    if suffix:
        currency = currency or detect_currency(suffix.group(0))
        end += suffix.end()
    elif (dash := _NO_PAISA_RE.match(after)) is not None:
        end += dash.end()
    elif re.match(r"^[A-Za-z\u0980-\u09ff]", after):
        return None  # glued to letters: a quantity ("500ml") or a code
    decimals = len(re.split(r"[.,]", token)[-1]) if re.search(r"[.,]\d{1,2}$", token) else 0
    return Amount(sign * value, currency, start, end, decimals)
