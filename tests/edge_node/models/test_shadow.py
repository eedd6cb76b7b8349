"""Shadow mode: the serving readings are returned untouched; the candidate's agreement is tallied."""

from __future__ import annotations

import random
import threading

import numpy as np

from edge_node.engines.base import LineReading
from edge_node.errors import ModelError
from edge_node.models.shadow import ShadowRecognizer, same_text


class Reader:
    languages = frozenset({"en"})

    def __init__(self, key: str, texts: list[str], fail: bool = False, gate: threading.Event | None = None) -> None:
        self.key = key
        self.texts = texts
        self.fail = fail
        self.gate = gate
        self.calls = 0

    def recognize(self, crops: list[np.ndarray], language: str) -> list[LineReading]:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise ModelError("candidate broke")
        return [LineReading(text, 0.9) for text in self.texts[: len(crops)]]


CROPS = [np.zeros((8, 8, 3), dtype=np.uint8)] * 3


def test_whitespace_differences_still_agree() -> None:
    assert same_text("TOTAL  12.50 ", "TOTAL 12.50")
    assert not same_text("TOTAL 12.50", "TOTAL 12.5O")


def test_serving_readings_are_returned_and_agreement_counted() -> None:
    serving = Reader("ppocr", ["MILK 45", "TEA 30", "EGGS 12"])
    candidate = Reader("trocr", ["MILK 45", "TEA 3O", "EGGS  12"])
    shadow = ShadowRecognizer(serving, candidate, sample=1.0)
    readings = shadow.recognize(CROPS, "en")
    shadow.close(wait=True)
    assert [r.text for r in readings] == ["MILK 45", "TEA 30", "EGGS 12"]
    stats = shadow.stats()
    assert (stats.lines, stats.agreed, stats.calls) == (3, 2, 1)
    assert stats.agreement == 2 / 3
    assert shadow.key == "ppocr"


def test_sampling_reads_only_a_share_of_calls() -> None:
    serving = Reader("ppocr", ["A"])
    candidate = Reader("trocr", ["A"])
    shadow = ShadowRecognizer(serving, candidate, sample=0.25, rng=random.Random(7))
    for _ in range(200):
        shadow.recognize(CROPS[:1], "en")
    shadow.close(wait=True)
    stats = shadow.stats()
    assert 20 < stats.calls + stats.skipped < 80
    assert serving.calls == 200


def test_a_busy_candidate_skips_samples_instead_of_queueing() -> None:
    gate = threading.Event()
    shadow = ShadowRecognizer(Reader("ppocr", ["A"]), Reader("trocr", ["A"], gate=gate), sample=1.0)
    for _ in range(5):
        shadow.recognize(CROPS[:1], "en")
    gate.set()
    shadow.close(wait=True)
    stats = shadow.stats()
    assert stats.calls == 1 and stats.skipped == 4


def test_a_failing_candidate_is_counted_and_never_reaches_the_caller() -> None:
    shadow = ShadowRecognizer(Reader("ppocr", ["A"]), Reader("trocr", ["A"], fail=True), sample=1.0)
    assert shadow.recognize(CROPS[:1], "en")[0].text == "A"
    shadow.close(wait=True)
    stats = shadow.stats()
    assert (stats.errors, stats.lines, stats.agreement) == (1, 0, None)
