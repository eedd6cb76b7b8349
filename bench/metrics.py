"""Text metrics for the accuracy benchmark: edit distance, CER/WER, multiset word P/R/F1, percentiles.

Definitions (the benchmark's figures are only as good as these, so they are exact and unit-tested):

* ``levenshtein(a, b)``: the minimum number of single-element insertions, deletions and substitutions that turn
  sequence ``a`` into ``b`` (unit costs). Works on strings (characters) and on lists of words.
* **CER** (character error rate) over a corpus = sum over items of ``levenshtein(pred, gt)`` divided by the sum of
  ``len(gt)`` (a micro average, as ICDAR and most OCR papers report it). **WER** is the same over whitespace-split
  words. An empty ground truth contributes its prediction's length to the numerator and 0 to the denominator.
* **Multiset word P/R/F1** (SROIE task 2, ICDAR protocol): both sides are split on whitespace into words; per
  document, matched = size of the multiset (``Counter``) intersection; matched, predicted and ground-truth counts
  are summed over documents, then precision = matched / predicted, recall = matched / ground truth and
  F1 = 2PR / (P + R). With nothing predicted, precision is 0 (not undefined); with an empty ground truth, recall is 0.
  Case-blind matching upper-cases both sides first (``str.upper``).
* **Normalised edit distance** of one pair = ``levenshtein(pred, gt) / max(len(pred), len(gt))`` (0 when both are
  empty); the scene-text figure is ``1 - mean(NED)`` (ICDAR 2019 ArT/ReCTS convention).
* **Percentiles** use linear interpolation between closest ranks (NumPy's default ``linear`` method).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

DANDA = "\u0964"  # BENGALI/DEVANAGARI DANDA '।'
_WS = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def levenshtein(a: Sequence[T], b: Sequence[T]) -> int:
    """Unit-cost edit distance between two sequences (two-row dynamic programme, O(len(a)*len(b)))."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    previous = list(range(len(b) + 1))
    for i, item_a in enumerate(a, start=1):
        current = [i]
        for j, item_b in enumerate(b, start=1):
            current.append(
                min(
                    previous[j] + 1,  # delete item_a
                    current[j - 1] + 1,  # insert item_b
                    previous[j - 1] + (item_a != item_b),  # substitute (or keep)
                )
            )
        previous = current
    return previous[-1]


def words(text: str) -> list[str]:
    """Split on any run of whitespace; no other tokenisation."""
    return text.split()


@dataclass(frozen=True)
class ErrorRate:
    """A micro-averaged error rate: total edits over total reference units."""

    edits: int
    reference: int

    @property
    def rate(self) -> float:
        """edits / reference; 0.0 when both are 0, inf when only the reference is empty."""
        if self.reference == 0:
            return 0.0 if self.edits == 0 else math.inf
        return self.edits / self.reference


def error_rate(pairs: Iterable[tuple[str, str]], unit: str = "char") -> ErrorRate:
    """CER (``unit='char'``) or WER (``unit='word'``) over (prediction, ground truth) pairs."""
    if unit not in ("char", "word"):
        raise ValueError(f"unit must be 'char' or 'word', not {unit!r}")
    edits = reference = 0
    for pred, gt in pairs:
        if unit == "char":
            edits += levenshtein(pred, gt)
            reference += len(gt)
        else:
            edits += levenshtein(words(pred), words(gt))
            reference += len(words(gt))
    return ErrorRate(edits, reference)


@dataclass(frozen=True)
class PRF:
    """Counts of a multiset match and the precision, recall and F1 derived from them."""

    matched: int
    predicted: int
    expected: int

    @property
    def precision(self) -> float:
        """matched / predicted (0 when nothing was predicted)."""
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """matched / expected (0 when nothing was expected)."""
        return self.matched / self.expected if self.expected else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (0 when both are 0)."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: PRF) -> PRF:
        return PRF(self.matched + other.matched, self.predicted + other.predicted, self.expected + other.expected)

    def as_dict(self) -> dict[str, float]:
        """Counts and ratios (ratios as percentages) for the JSON report."""
        return {
            "matched": self.matched,
            "predicted": self.predicted,
            "expected": self.expected,
            "precision": 100 * self.precision,
            "recall": 100 * self.recall,
            "f1": 100 * self.f1,
        }


def multiset_prf(predicted: Iterable[str], expected: Iterable[str]) -> PRF:
    """Match two multisets of tokens (one document); duplicates match at most as often as both sides hold them."""
    pred_counts, gt_counts = Counter(predicted), Counter(expected)
    matched = sum((pred_counts & gt_counts).values())
    return PRF(matched, sum(pred_counts.values()), sum(gt_counts.values()))


def word_prf(pred_text: str, gt_text: str, case_blind: bool) -> PRF:
    """Multiset word match of one document; ``case_blind`` upper-cases both sides first."""
    if case_blind:
        pred_text, gt_text = pred_text.upper(), gt_text.upper()
    return multiset_prf(words(pred_text), words(gt_text))


def sum_prf(parts: Iterable[PRF]) -> PRF:
    """Sum per-document counts (the ICDAR micro average)."""
    total = PRF(0, 0, 0)
    for part in parts:
        total = total + part
    return total


def normalized_edit_distance(pred: str, gt: str) -> float:
    """levenshtein / max(len(pred), len(gt)); 0.0 when both are empty."""
    longest = max(len(pred), len(gt))
    return levenshtein(pred, gt) / longest if longest else 0.0


def alnum_fold(text: str) -> str:
    """The standard case-blind scene-text form: lower-case, then keep only ASCII letters and digits."""
    return _NOT_ALNUM.sub("", text.lower())


def collapse_ws(text: str) -> str:
    """Trim and collapse every whitespace run to one space."""
    return _WS.sub(" ", text).strip()


def normalize_bengali(text: str) -> str:
    """NFC, '|' -> '।' (U+0964), whitespace trimmed and collapsed.

    The ground truth uses both the danda and ASCII '|' for the same sentence stop (the renderer's training text is
    inconsistent, and the two glyphs look nearly the same in print), so neither side is penalised for choosing
    the other: both are mapped to the danda before comparing.
    """
    return collapse_ws(unicodedata.normalize("NFC", text).replace("|", DANDA))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, not {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(part: int, whole: int) -> float:
    """part / whole as a percentage; 0.0 for an empty whole."""
    return 100 * part / whole if whole else 0.0
