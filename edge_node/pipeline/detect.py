"""Text detection and reading order: quads from the detector, grouped into rows, top to bottom, left to right."""

from __future__ import annotations

import numpy as np

from edge_node.engines.base import Quad, TextDetector

#: Two boxes share a row when their vertical extents overlap by this share of the smaller height.
ROW_OVERLAP = 0.5


def detect_rows(image: np.ndarray, detector: TextDetector, max_side: int) -> list[list[Quad]]:
    """Line quads of `image` grouped into rows, in reading order."""
    return reading_rows(detector.detect(image, max_side))


def reading_rows(quads: list[Quad]) -> list[list[Quad]]:
    """Group quads into rows (vertical overlap) sorted top to bottom, each row sorted left to right."""
    if not quads:
        return []
    spans = [(float(q[:, 1].min()), float(q[:, 1].max())) for q in quads]
    order = sorted(range(len(quads)), key=lambda i: (spans[i][0] + spans[i][1]) / 2)
    rows: list[list[int]] = []
    row_spans: list[tuple[float, float]] = []
    for index in order:
        top, bottom = spans[index]
        for row, (row_top, row_bottom) in zip(rows, row_spans, strict=True):
            overlap = min(bottom, row_bottom) - max(top, row_top)
            smaller = min(bottom - top, row_bottom - row_top)
            if smaller > 0 and overlap / smaller >= ROW_OVERLAP:
                row.append(index)
                break
        else:
            rows.append([index])
            row_spans.append((top, bottom))
    ordered = sorted(rows, key=lambda row: min(spans[i][0] for i in row))
    return [sorted((quads[i] for i in row), key=lambda q: float(q[:, 0].min())) for row in ordered]
