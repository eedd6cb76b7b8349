"""Document line crops: a margin for tight crops only, and word positions mapped back."""

from __future__ import annotations

import numpy as np
import pytest

from edge_node.engines.base import LineReading, WordReading
from edge_node.pipeline.crops import is_tight, unpad, with_margin


def _line(top: int, bottom: int) -> np.ndarray:
    crop = np.full((40, 200, 3), 255, dtype=np.uint8)
    crop[top:bottom, 20:180] = 0
    return crop


def test_tight_crop_gets_a_margin_and_loose_one_does_not() -> None:
    tight, margin = with_margin(_line(0, 40))
    assert is_tight(_line(0, 40)) and margin == 8 and tight.shape == (56, 216, 3)
    loose, none = with_margin(_line(10, 30))
    assert not is_tight(_line(10, 30)) and none == 0 and loose.shape == (40, 200, 3)
    assert not is_tight(np.full((40, 200, 3), 255, dtype=np.uint8))


def test_unpad_maps_word_positions_back() -> None:
    reading = LineReading("AB", 0.9, [WordReading("AB", 0.9, 8 / 216, 208 / 216)])
    back = unpad(reading, margin=8, width=200)
    assert back.words[0].x0 == pytest.approx(0.0) and back.words[0].x1 == pytest.approx(1.0)
    assert unpad(reading, margin=0, width=200) is reading
