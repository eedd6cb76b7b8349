"""Accuracy of each system on the speed sets, so that a faster system is never a worse one unnoticed.

Every system's answer is first reduced to a ``Reading``: text lines with their box heights, the structured price
when the system gives one, and barcodes as (zxing format name, value). Then, per set:

* ``price_tags``: exact match of ``bench.normalize.prominent_price`` (the structured price when present, else the
  number with the most digits on the tallest line) with the crop's price (as ``python -m bench accuracy --set
  price_tags`` scores crops).
* ``barcodes``: decode rate: some returned code has the expected format and exactly the expected value.
* ``product``: share of the planted text items read (the price as a bare price token, ``bench.normalize.
  shelf_prices``; each word as a whole token after ``bench.metrics.alnum_fold``), and separately the share of
  photos whose barcode was decoded (OCR-only systems read no barcodes: they show n/a).
* ``receipts``: case-blind multiset word F1 over the receipts (``bench.metrics.word_prf``, summed, ICDAR style).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.metrics import PRF, alnum_fold, sum_prf, word_prf
from bench.normalize import prominent_price, shelf_prices
from bench.speed_sets import SpeedItem


@dataclass(frozen=True)
class Reading:
    """What a system returned for one image, reduced to what the scores need."""

    lines: tuple[tuple[str, float], ...] = ()  # (text, line box height in px)
    price: float | None = None  # a structured price, when the system extracts one
    barcodes: tuple[tuple[str, str], ...] = ()
    reads_text: bool = True
    reads_barcodes: bool = False


@dataclass(frozen=True)
class ItemScore:
    """One image's score: text matches and barcode decode, each with how much there was to find."""

    text: PRF = field(default_factory=lambda: PRF(0, 0, 0))
    barcode_hit: bool | None = None  # None: not applicable (no barcode to find, or the system reads none)


def text_tokens(reading: Reading) -> list[str]:
    """Every whitespace-separated token of every line."""
    return [token for text, _height in reading.lines for token in text.split()]


def score_item(item: SpeedItem, reading: Reading) -> ItemScore:
    """Score one reading against the item's truth (see the module docstring)."""
    truth = item.truth
    barcode_hit = None
    if truth.barcode is not None and reading.reads_barcodes:
        barcode_hit = truth.barcode in reading.barcodes
    if item.doc_type == "barcode":
        return ItemScore(barcode_hit=barcode_hit)
    if item.doc_type == "receipt":
        text = "\n".join(text for text, _height in reading.lines)
        return ItemScore(text=word_prf(text, truth.text, case_blind=True), barcode_hit=barcode_hit)
    if truth.words:  # a composed product photo: planted items found
        tokens = {alnum_fold(token) for token in text_tokens(reading)} - {""}
        found = sum(alnum_fold(word) in tokens for word in truth.words)
        price_found = truth.price is not None and truth.price in shelf_prices([t for t, _ in reading.lines])
        expected = len(truth.words) + (truth.price is not None)
        matched = found + price_found
        return ItemScore(text=PRF(matched, expected, expected), barcode_hit=barcode_hit)
    predicted = prominent_price(list(reading.lines), reading.price)
    hit = predicted is not None and predicted == truth.price
    return ItemScore(text=PRF(int(hit), 1, 1), barcode_hit=barcode_hit)


@dataclass(frozen=True)
class SetAccuracy:
    """A system's accuracy on one set: the headline (0-100) and, for product photos, the barcode share."""

    label: str
    value: float | None
    barcode_label: str | None = None
    barcode_value: float | None = None


def aggregate(set_key: str, scores: Sequence[ItemScore], reads_text: bool, reads_barcodes: bool) -> SetAccuracy:
    """The set's headline accuracy for one system (None where the system cannot read what the set asks)."""
    hits = [s.barcode_hit for s in scores if s.barcode_hit is not None]
    barcode_share = 100 * sum(hits) / len(hits) if hits and reads_barcodes else None
    if set_key == "barcodes":
        return SetAccuracy("decoded (right format and value)", barcode_share if reads_barcodes else None)
    total = sum_prf(s.text for s in scores)
    if set_key == "receipts":
        return SetAccuracy("word F1, case-blind", 100 * total.f1 if reads_text and scores else None)
    if set_key == "product":
        share = 100 * total.matched / total.expected if reads_text and total.expected else None
        return SetAccuracy("planted text found", share, "barcode decoded", barcode_share)
    share = 100 * total.matched / total.expected if reads_text and total.expected else None
    return SetAccuracy("exact price", share)
