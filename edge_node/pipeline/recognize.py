"""Recognition with per-line fallback: the primary engine reads every line; a line it reads below the
request's confidence threshold (or fails on) is read again by the fallback engine, whose reading wins when it
reaches the threshold and is clearly surer (FALLBACK_MARGIN) than the primary's."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edge_node.engines.base import LineReading, TextRecognizer
from edge_node.errors import ModelError
from edge_node.pipeline.crops import unpad, with_margin

_LOGGER = logging.getLogger(__name__)

#: The engines' confidences are not on one scale: Tesseract is often sure of a wrong reading where PP-OCR
#: was unsure of a right one. On SROIE line crops PP-OCR read lines under 0.8 right 9 times where Tesseract
#: was right once, and never right where PP-OCR was wrong; the fallback must be clearly surer to win.
FALLBACK_MARGIN = 0.2


@dataclass(frozen=True, slots=True)
class ChosenReading:
    """The reading kept for one crop and the engine that produced it."""

    reading: LineReading
    engine: str


def recognize_crops(
    crops: list[np.ndarray],
    language: str,
    threshold: float,
    primary: TextRecognizer,
    fallback: TextRecognizer | None,
    document: bool = False,
) -> list[ChosenReading]:
    """Read every crop with `primary`, re-read the weak ones with `fallback`; never returns fewer items.

    `document` (receipts, invoices): tight crops get a margin first (see `crops.with_margin`).
    """
    if not crops:
        return []
    if document:
        prepared = [with_margin(crop) for crop in crops]
        chosen = _recognize([c for c, _ in prepared], language, threshold, primary, fallback)
        return [
            ChosenReading(unpad(c.reading, margin, crop.shape[1]), c.engine)
            for c, (_, margin), crop in zip(chosen, prepared, crops, strict=True)
        ]
    return _recognize(crops, language, threshold, primary, fallback)


def _recognize(
    crops: list[np.ndarray],
    language: str,
    threshold: float,
    primary: TextRecognizer,
    fallback: TextRecognizer | None,
) -> list[ChosenReading]:
    try:
        first = primary.recognize(crops, language)
    except ModelError:
        if fallback is None:
            raise
        _LOGGER.warning("primary engine %s failed; reading the whole image with %s", primary.key, fallback.key)
        return [ChosenReading(r, fallback.key) for r in fallback.recognize(crops, language)]
    chosen = [ChosenReading(r, primary.key) for r in first]
    if fallback is None:
        return chosen
    weak = [i for i, r in enumerate(first) if r.confidence < threshold or not r.text]
    if not weak:
        return chosen
    try:
        second = fallback.recognize([crops[i] for i in weak], language)
    except ModelError as err:
        _LOGGER.warning("fallback engine %s failed, keeping %s's readings: %s", fallback.key, primary.key, err)
        return chosen
    for index, reading in zip(weak, second, strict=True):
        current = chosen[index].reading
        if reading.text and reading.confidence >= max(threshold, current.confidence + FALLBACK_MARGIN):
            chosen[index] = ChosenReading(reading, fallback.key)
    return chosen
