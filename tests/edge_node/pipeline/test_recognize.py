"""Per-line fallback rules, with fake engines (this module's logic alone)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_node.engines.base import LineReading
from edge_node.errors import ModelError
from edge_node.pipeline.recognize import recognize_crops


class FakeEngine:
    def __init__(self, key: str, readings: list[LineReading] | None, fail: bool = False) -> None:
        self.key = key
        self.languages = frozenset({"en"})
        self.readings = readings or []
        self.fail = fail
        self.calls: list[int] = []

    def recognize(self, crops: list[np.ndarray], language: str) -> list[LineReading]:
        self.calls.append(len(crops))
        if self.fail:
            raise ModelError("broken")
        return self.readings[: len(crops)]


CROPS = [np.zeros((10, 10, 3), dtype=np.uint8)] * 3


def test_only_weak_lines_go_to_the_fallback_and_a_clearly_surer_reading_wins() -> None:
    primary = FakeEngine("p", [LineReading("good", 0.95), LineReading("w3ak", 0.5), LineReading("bad", 0.7)])
    fallback = FakeEngine("f", [LineReading("weak", 0.9), LineReading("bed", 0.85)])
    chosen = recognize_crops(CROPS, "en", 0.8, primary, fallback)
    assert fallback.calls == [2]
    # 0.9 beats 0.5 by more than the margin; 0.85 over 0.7 is not clearly surer.
    assert [(c.reading.text, c.engine) for c in chosen] == [("good", "p"), ("weak", "f"), ("bad", "p")]


def test_a_failing_primary_hands_everything_to_the_fallback() -> None:
    fallback = FakeEngine("f", [LineReading("a", 0.9), LineReading("b", 0.9), LineReading("c", 0.9)])
    chosen = recognize_crops(CROPS, "en", 0.8, FakeEngine("p", None, fail=True), fallback)
    assert [c.engine for c in chosen] == ["f", "f", "f"]


def test_a_failing_primary_without_fallback_raises() -> None:
    with pytest.raises(ModelError):
        recognize_crops(CROPS, "en", 0.8, FakeEngine("p", None, fail=True), None)


def test_a_failing_fallback_keeps_the_primary_reading() -> None:
    primary = FakeEngine("p", [LineReading("x", 0.1)] * 3)
    chosen = recognize_crops(CROPS, "en", 0.8, primary, FakeEngine("f", None, fail=True))
    assert [c.reading.text for c in chosen] == ["x", "x", "x"]
