"""Reading order: rows by vertical overlap, left to right inside a row."""

from __future__ import annotations

import numpy as np

from edge_node.pipeline.detect import reading_rows


def _quad(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)


def test_rows_top_to_bottom_left_to_right() -> None:
    total = _quad(10, 100, 80, 20)
    amount = _quad(300, 103, 60, 20)  # same row, slightly lower
    header = _quad(50, 10, 200, 30)
    footer = _quad(20, 200, 100, 20)
    rows = reading_rows([footer, amount, header, total])
    assert [[float(q[0, 0]) for q in row] for row in rows] == [[50.0], [10.0, 300.0], [20.0]]


def test_barely_touching_boxes_are_separate_rows() -> None:
    rows = reading_rows([_quad(0, 0, 50, 20), _quad(0, 17, 50, 20)])
    assert len(rows) == 2


def test_nothing_detected() -> None:
    assert reading_rows([]) == []
