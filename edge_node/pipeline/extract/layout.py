"""Page geometry for field extraction: visual rows, the amount printed beside a label, labels to the left.

OCR engines return one line per text region, so "TOTAL" and "80.90" on one printed row are often two lines and,
on a skewed photo, not even neighbours in reading order. These helpers pair them by their boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from edge_node.pipeline.extract.dates import label_at_end, normalise
from edge_node.pipeline.extract.money import Amount, find_amounts
from edge_node.pipeline.extract.numerals import letter_count
from shared_models.ocr import Line

T = TypeVar("T")

# Two boxes are on one row when their vertical overlap covers this share of the shorter box: tolerant of the
# slight skew of a hand-held photo, strict enough to keep adjacent receipt rows apart.
_ROW_OVERLAP = 0.5
# A value printed under its label ("TOTAL" / "230.00") sits at most this many label heights below it.
_BELOW_GAP = 1.0


@dataclass(frozen=True)
class Found(Generic[T]):
    """An extracted value, how sure we are of it (0-1), and the index of the line it came from (-1: derived)."""

    value: T
    confidence: float
    index: int


def same_row(a: Line, b: Line) -> bool:
    """True when two lines sit on the same visual row."""
    top = max(a.bounding_box.y, b.bounding_box.y)
    bottom = min(a.bounding_box.y + a.bounding_box.height, b.bounding_box.y + b.bounding_box.height)
    shorter = max(1, min(a.bounding_box.height, b.bounding_box.height))
    return (bottom - top) >= _ROW_OVERLAP * shorter


def rows(lines: list[Line]) -> list[list[Line]]:
    """Group lines into visual rows, top to bottom, each row left to right."""
    ordered = sorted(lines, key=lambda ln: ln.bounding_box.y + ln.bounding_box.height / 2)
    grouped: list[list[Line]] = []
    for line in ordered:
        if grouped and same_row(grouped[-1][0], line):
            grouped[-1].append(line)
        else:
            grouped.append([line])
    return [sorted(row, key=lambda ln: ln.bounding_box.x) for row in grouped]


def right_of(lines: list[Line], index: int) -> list[int]:
    """Indices of the lines on the same row as `lines[index]` and to its right, nearest first."""
    label = lines[index].bounding_box
    centre = label.x + label.width / 2
    beside = [
        i
        for i, ln in enumerate(lines)
        if i != index and same_row(lines[index], ln) and ln.bounding_box.x + ln.bounding_box.width / 2 > centre
    ]
    return sorted(beside, key=lambda i: lines[i].bounding_box.x)


def amount_beside(
    lines: list[Line], index: int, *, require_money: bool = False, below: bool = False
) -> Found[float] | None:
    """The amount that belongs to the label on `lines[index]`: later on that line, else to its right on the row,
    else (with `below`) a bare amount printed right under the label.

    Amounts marked as money (currency sign or two decimals) win over bare integers. A bare integer is a fallback,
    taken only when it ends its line (Taka totals are often "450"); with `require_money` it must be at least 1.
    """
    sources: list[tuple[int, list[Amount]]] = [(index, find_amounts(lines[index].text)[::-1])]
    for i in right_of(lines, index):
        amounts = find_amounts(lines[i].text)
        if not amounts and letter_count(lines[i].text) >= 3:
            break  # another label: this row's amounts belong to it
        sources.append((i, amounts))
    fallback: Found[float] | None = None
    for i, amounts in sources:
        for amount in amounts:
            if amount.explicit:
                return Found(amount.value, lines[i].confidence, i)
            if fallback is None and _clean_trailing_integer(lines[i].text, amount):
                fallback = Found(amount.value, lines[i].confidence * 0.8, i)
    if require_money and fallback is not None and fallback.value < 1:
        fallback = None
    if fallback is None and below:
        return _amount_below(lines, index)
    return fallback


def _amount_below(lines: list[Line], index: int) -> Found[float] | None:
    """A line holding just a money amount, directly under the label (within about one line height)."""
    label = lines[index].bounding_box
    bottom = label.y + label.height
    best: tuple[int, Found[float]] | None = None
    for i, line in enumerate(lines):
        box = line.bounding_box
        gap = box.y - bottom
        if i == index or not -label.height // 4 <= gap <= label.height * _BELOW_GAP or box.x + box.width < label.x:
            continue
        amounts = [a for a in find_amounts(line.text) if a.explicit]
        if len(amounts) == 1 and letter_count(line.text) <= 3 and (best is None or gap < best[0]):
            best = (gap, Found(amounts[0].value, line.confidence * 0.9, i))
    return best[1] if best else None


def rightmost_amount(lines: list[Line], index: int) -> Found[float] | None:
    """The last money amount on the row of `lines[index]` (the line itself included), for table rows."""
    best: Found[float] | None = None
    for i in [index, *right_of(lines, index)]:
        for amount in find_amounts(lines[i].text):
            if amount.explicit:
                best = Found(amount.value, lines[i].confidence, i)
    return best


def label_of_previous(lines: list[Line], index: int) -> str | None:
    """The date label ("date", "expiry", ...) printed just before `lines[index]`: on the row to its left or above."""
    here = lines[index]
    left = [
        ln
        for i, ln in enumerate(lines)
        if i != index and same_row(here, ln) and ln.bounding_box.x < here.bounding_box.x
    ]
    left.sort(key=lambda ln: -ln.bounding_box.x)
    neighbours = left[:1] + ([lines[index - 1]] if index > 0 else [])
    for line in neighbours:
        kind = label_at_end(line.text)
        if kind is not None:
            return kind
    return None


def _clean_trailing_integer(text: str, amount: Amount) -> bool:
    """A bare integer counts as an amount only at the end of its line and not in brackets ("GST (3)")."""
    norm = normalise(text)
    tail = norm[amount.end :].strip(" :*")
    head = norm[: amount.start].rstrip()
    return amount.value >= 1 and not tail and not head.endswith("(")
