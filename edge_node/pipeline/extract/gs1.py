"""GS1 identification keys and element strings, pure parsing with no I/O.

Covers what a shop meets on product codes: GTIN / SSCC check digits, UPC-E <-> UPC-A, and the element strings
of GS1 DataMatrix, GS1-128, GS1 DataBar and GS1 QR codes, in either of the two forms decoders produce:

* raw: ``01095040000591011727031210AB12`` with GS (0x1D, the FNC1 separator) after variable-length fields,
  optionally preceded by a symbology identifier (``]d2``) or a leading FNC1;
* bracketed human-readable (HRI): ``(01)09504000059101(17)270312(10)AB12``, as zxing-cpp's ``TextMode.HRI`` prints.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from decimal import Decimal

# Group separator: how decoders write FNC1 between fields (after a variable-length value).
GS = "\x1d"


class Gs1Error(ValueError):
    """The data is not a well-formed GS1 element string (unknown AI, bad length, failed check digit)."""


def _table() -> dict[str, tuple[int | None, int]]:
    """AI -> (fixed length or None, maximum length) for the AIs that matter in retail and logistics."""
    table: dict[str, tuple[int | None, int]] = {
        "00": (18, 18), "01": (14, 14), "02": (14, 14), "10": (None, 20), "11": (6, 6), "12": (6, 6),
        "13": (6, 6), "15": (6, 6), "16": (6, 6), "17": (6, 6), "20": (2, 2), "21": (None, 20), "22": (None, 20),
        "235": (None, 28), "240": (None, 30), "241": (None, 30), "242": (None, 6), "243": (None, 20),
        "250": (None, 30), "251": (None, 30), "253": (None, 30), "254": (None, 20), "255": (None, 25),
        "30": (None, 8), "37": (None, 8), "400": (None, 30), "401": (None, 30), "402": (17, 17), "403": (None, 30),
        "420": (None, 20), "421": (None, 12), "422": (3, 3), "423": (None, 15), "424": (3, 3), "425": (None, 15),
        "426": (3, 3), "427": (None, 3), "7001": (13, 13), "7002": (None, 30), "7003": (10, 10), "7004": (None, 4),
        "7006": (6, 6), "7007": (None, 12), "7010": (None, 2), "8001": (14, 14), "8002": (None, 20),
        "8003": (None, 30), "8004": (None, 30), "8005": (6, 6), "8006": (18, 18), "8007": (None, 34),
        "8008": (None, 12), "8009": (None, 50), "8010": (None, 30), "8011": (None, 12), "8012": (None, 20),
        "8013": (None, 25), "8017": (18, 18), "8018": (18, 18), "8019": (None, 10), "8020": (None, 25),
        "8026": (18, 18), "8110": (None, 70), "8111": (4, 4), "8112": (None, 70), "8200": (None, 70),
        "90": (None, 30),
    }
    for ai in range(410, 418):  # ship-to / bill-to / ... global location numbers
        table[str(ai)] = (13, 13)
    for family in range(310, 370):  # trade and logistic measures: 4-digit AI, last digit = decimal places
        for n in range(10):
            table[f"{family}{n}"] = (6, 6)
    for n in range(10):
        table[f"390{n}"] = (None, 15)  # amount payable, local currency
        table[f"391{n}"] = (None, 18)  # amount payable, ISO 4217 currency + amount
        table[f"392{n}"] = (None, 15)  # price of a variable-measure item, local currency
        table[f"393{n}"] = (None, 18)  # price, ISO 4217 currency + amount
        table[f"394{n}"] = (4, 4)
        table[f"395{n}"] = (6, 6)
    for ai in range(91, 100):  # company internal information
        table[str(ai)] = (None, 90)
    return table


# The AI table; GS1 AIs form a prefix-free code, so trying 2-, 3- then 4-digit keys finds the one AI that fits.
AI_TABLE = _table()
# AIs whose values end in a GS1 mod-10 check digit.
_CHECKED_AIS = frozenset({"00", "01", "02", "410", "411", "412", "413", "414", "415", "416", "417", "8017", "8018"})
# AIs that hold a YYMMDD date (DD may be 00).
DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17"})
# AIs that must be all digits (everything else may carry the GS1 82-character set).
_NUMERIC_PREFIXES = ("00", "01", "02", "11", "12", "13", "15", "16", "17", "20", "30", "31", "32", "33", "34",
                     "35", "36", "37", "39", "41", "422", "424", "426", "7001", "7003", "8005", "8006", "8017", "8018")
# Symbology identifiers that announce GS1 data; decoders may keep them in front of the payload.
_GS1_SYMBOLOGY_IDS = ("]C1", "]d2", "]Q3", "]e0", "]J1", "]z1")
# An AI in the bracketed HRI form; only AIs in AI_TABLE count, other brackets belong to the value.
_BRACKETED = re.compile(r"\((\d{2,4})\)")


def gtin_check_digit_ok(digits: str) -> bool:
    """True when ``digits`` (GTIN-8/12/13/14, SSCC-18, GLN...) ends in its correct GS1 mod-10 check digit."""
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    body = digits[:-1]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(digits[-1])


def upce_to_upca(upce: str) -> str | None:
    """Expand an 8-digit UPC-E (number system, 6 digits, check) to its 12-digit UPC-A; None if not UPC-E."""
    if len(upce) != 8 or not upce.isascii() or not upce.isdigit() or upce[0] not in "01":
        return None
    ns, d, check = upce[0], upce[1:7], upce[7]
    last = d[5]
    if last in "012":
        body = d[0:2] + last + "0000" + d[2:5]
    elif last == "3":
        body = d[0:3] + "00000" + d[3:5]
    elif last == "4":
        body = d[0:4] + "00000" + d[4]
    else:
        body = d[0:5] + "0000" + last
    return ns + body + check


def upca_to_upce(upca: str) -> str | None:
    """Compress a 12-digit UPC-A to its 8-digit UPC-E form; None when the number has no UPC-E form."""
    if len(upca) != 12 or not upca.isdigit() or upca[0] not in "01":
        return None
    ns, m, p, check = upca[0], upca[1:6], upca[6:11], upca[11]
    if m[2:] in ("000", "100", "200") and p[:2] == "00":
        short = m[:2] + p[2:] + m[2]
    elif m[3:] == "00" and p[:3] == "000":
        short = m[:3] + p[3:] + "3"
    elif m[4] == "0" and p[:4] == "0000":
        short = m[:4] + p[4] + "4"
    elif m[4] != "0" and p[:4] == "0000" and p[4] in "56789":
        short = m + p[4]
    else:
        return None
    candidate = ns + short + check
    return candidate if upce_to_upca(candidate) == upca else None


def gs1_date_to_iso(yymmdd: str, today: dt.date | None = None) -> str | None:
    """``"270312"`` -> ``"2027-03-12"``; day 00 means the last day of the month; None if not a valid date.

    The century follows the GS1 General Specifications (7.12): a year more than 50 years ahead of ``today``
    belongs to the previous century, one more than 49 years behind to the next.
    """
    if len(yymmdd) != 6 or not yymmdd.isascii() or not yymmdd.isdigit():
        return None
    yy, month, day = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    ref = (today or dt.date.today()).year
    century = ref - ref % 100
    diff = yy - ref % 100
    if 51 <= diff <= 99:
        century -= 100
    elif -99 <= diff <= -50:
        century += 100
    year = century + yy
    if not 1 <= month <= 12:
        return None
    last_day = calendar.monthrange(year, month)[1]
    if day == 0:
        day = last_day
    if day > last_day:
        return None
    return dt.date(year, month, day).isoformat()


def gs1_decimal(ai: str, value: str) -> Decimal | None:
    """Numeric value of a measure (31nn-36nn) or amount (390n-393n) AI, with the AI's implied decimals."""
    if len(ai) != 4 or not ai.isdigit():
        return None
    digits = value[3:] if ai[:3] in ("391", "393") else value  # these two carry an ISO currency code first
    if not digits.isdigit() or not ("310" <= ai[:3] <= "369" or "390" <= ai[:3] <= "393"):
        return None
    return Decimal(int(digits)).scaleb(-int(ai[3]))


def _ai_at(data: str, pos: int) -> str:
    """The AI that starts at ``pos`` of a raw element string."""
    for size in (2, 3, 4):
        candidate = data[pos:pos + size]
        if len(candidate) == size and candidate in AI_TABLE:
            return candidate
    raise Gs1Error(f"unknown application identifier at {data[pos:pos + 4]!r}")


def _check(ai: str, value: str) -> None:
    """Validate one element's length, character set, check digit and date."""
    fixed, longest = AI_TABLE[ai]
    if not value or (fixed is not None and len(value) != fixed) or len(value) > longest:
        raise Gs1Error(f"AI ({ai}) has a value of bad length: {value!r}")
    if ai.startswith(_NUMERIC_PREFIXES) and not (value.isascii() and value.isdigit()):
        raise Gs1Error(f"AI ({ai}) must be numeric: {value!r}")
    if any(ord(ch) < 0x20 or ord(ch) > 0x7E for ch in value):
        raise Gs1Error(f"AI ({ai}) holds characters outside the GS1 set")
    if ai in _CHECKED_AIS and not gtin_check_digit_ok(value):
        raise Gs1Error(f"AI ({ai}) fails its check digit: {value}")
    if ai in DATE_AIS and gs1_date_to_iso(value, dt.date(2000 + int(value[:2]), 1, 1)) is None:
        raise Gs1Error(f"AI ({ai}) is not a date: {value}")


def _parse_bracketed(data: str) -> list[tuple[str, str]]:
    """Split ``(01)...(17)...`` into (AI, value) pairs; brackets around unknown numbers stay in the value."""
    starts = [m for m in _BRACKETED.finditer(data) if m.group(1) in AI_TABLE]
    if not starts or starts[0].start() != 0:
        raise Gs1Error("bracketed GS1 data must start with (AI)")
    pairs = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(data)
        pairs.append((match.group(1), data[match.end():end]))
    return pairs


def _parse_raw(data: str) -> list[tuple[str, str]]:
    """Split a raw element string (GS after variable-length fields) into (AI, value) pairs."""
    pairs = []
    pos = 0
    while pos < len(data):
        ai = _ai_at(data, pos)
        pos += len(ai)
        fixed, _ = AI_TABLE[ai]
        if fixed is not None:
            end = pos + fixed
        else:
            gs_at = data.find(GS, pos)
            end = len(data) if gs_at < 0 else gs_at
        pairs.append((ai, data[pos:end]))
        pos = end + 1 if end < len(data) and data[end] == GS else end
    return pairs


def parse_gs1(data: str) -> dict[str, str]:
    """Parse a GS1 element string (raw with GS separators, or bracketed HRI) into ``{AI: value}``.

    Raises Gs1Error when the data is not well-formed GS1: unknown AI, wrong length, non-numeric digits,
    a GTIN/SSCC whose check digit fails, an impossible date, or one AI given twice with different values.
    """
    text = data
    for sym_id in _GS1_SYMBOLOGY_IDS:
        if text.startswith(sym_id):
            text = text[len(sym_id):]
            break
    text = text.lstrip(GS)
    if not text:
        raise Gs1Error("empty GS1 data")
    pairs = _parse_bracketed(text) if text.startswith("(") else _parse_raw(text)
    result: dict[str, str] = {}
    for ai, value in pairs:
        _check(ai, value)
        if result.get(ai, value) != value:
            raise Gs1Error(f"AI ({ai}) appears twice with different values")
        result[ai] = value
    return result


def gs1_to_hri(elements: dict[str, str]) -> str:
    """``{"01": "...", "17": "..."}`` -> ``"(01)...(17)..."`` in the given order."""
    return "".join(f"({ai}){value}" for ai, value in elements.items())
