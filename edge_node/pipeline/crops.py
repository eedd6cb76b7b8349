"""Line-crop preparation for printed documents: a crop cut exactly at the glyphs gets a margin.

PP-OCR was trained on loosely cut lines and misreads the first and last characters of crops whose ink
touches the edges (SROIE ground-truth line crops, case-blind word F1 86.8 -> 88.6 with the margin).
Photos of labels and scene text read better as they are (scene-text word accuracy drops from 97.0 to 95.3
with it), so only receipts and invoices get it. Word positions are mapped back to the crop as given.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_node.engines.base import LineReading, WordReading

#: Margin added around a tight crop, as a share of its height.
CROP_MARGIN = 0.2
#: Grey-level difference from the background (median of the left and right edges) that counts as ink.
INK_CONTRAST = 48
#: Ink within this many pixels of the top or bottom edge makes a crop tight.
TIGHT_EDGE_PX = 1


def is_tight(crop: np.ndarray) -> bool:
    """True when ink touches the crop's top or bottom edge."""
    height = crop.shape[0]
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    background = int(np.median(np.concatenate([gray[:, 0], gray[:, -1]])))
    rows = np.flatnonzero((np.abs(gray.astype(np.int16) - background) > INK_CONTRAST).any(axis=1))
    return bool(rows.size) and bool(rows[0] <= TIGHT_EDGE_PX or rows[-1] >= height - 1 - TIGHT_EDGE_PX)


def with_margin(crop: np.ndarray) -> tuple[np.ndarray, int]:
    """Tight crops get CROP_MARGIN of replicated border; returns (crop, margin in px, 0 when unchanged)."""
    if not is_tight(crop):
        return crop, 0
    margin = max(1, round(crop.shape[0] * CROP_MARGIN))
    return cv2.copyMakeBorder(crop, margin, margin, margin, margin, cv2.BORDER_REPLICATE), margin


def unpad(reading: LineReading, margin: int, width: int) -> LineReading:
    """Word positions (fractions of the margined crop) as fractions of the original crop's width."""
    if margin == 0:
        return reading
    padded_width = width + 2 * margin

    def back(x: float) -> float:
        return min(1.0, max(0.0, (x * padded_width - margin) / max(width, 1)))

    words = [WordReading(w.text, w.confidence, back(w.x0), back(w.x1)) for w in reading.words]
    return LineReading(reading.text, reading.confidence, words)
