"""The probation watch: counts a new model's calls and failures and decides once."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from edge_node.engines.base import LineReading
from edge_node.errors import ModelError
from edge_node.models.probation import WatchedRecognizer


class Flaky:
    key = "trocr"
    languages = frozenset({"en"})

    def __init__(self, fail_on: set[int]) -> None:
        self.fail_on = fail_on
        self.calls = 0

    def recognize(self, crops: list[np.ndarray], language: str) -> list[LineReading]:
        self.calls += 1
        if self.calls in self.fail_on:
            raise ModelError("boom")
        return [LineReading("ok", 0.9) for _ in crops]


def watch(fail_on: set[int], window: int = 10, rate: float = 0.2) -> tuple[WatchedRecognizer, list[str]]:
    verdicts: list[str] = []
    watched = WatchedRecognizer(Flaky(fail_on), window=window, max_error_rate=rate,
                                on_trip=lambda reason: verdicts.append("trip: " + reason),
                                on_pass=lambda: verdicts.append("pass"))
    return watched, verdicts


def call(watched: WatchedRecognizer, times: int) -> None:
    crop = np.zeros((8, 8, 3), dtype=np.uint8)
    for _ in range(times):
        with contextlib.suppress(ModelError):
            watched.recognize([crop], "en")


def test_a_healthy_model_passes_after_the_window() -> None:
    watched, verdicts = watch(fail_on={3})  # 1 of 10 = 10% <= 20%
    call(watched, 9)
    assert verdicts == []
    call(watched, 1)
    assert verdicts == ["pass"]
    call(watched, 20)
    assert verdicts == ["pass"], "the verdict is given once"


def test_too_many_failures_trip_as_soon_as_the_rate_cannot_be_met() -> None:
    watched, verdicts = watch(fail_on={1, 2, 3})  # 3 > 0.2 x 10 already after the third call
    call(watched, 3)
    assert len(verdicts) == 1 and verdicts[0].startswith("trip: 3 of its first 3 calls failed")
    assert "boom" in verdicts[0]


def test_failures_exactly_at_the_limit_pass() -> None:
    watched, verdicts = watch(fail_on={2, 7})  # 2 of 10 = 20%: not above the limit
    call(watched, 10)
    assert verdicts == ["pass"]


def test_failures_still_reach_the_caller() -> None:
    watched, _ = watch(fail_on={1})
    with pytest.raises(ModelError):
        watched.recognize([np.zeros((8, 8, 3), dtype=np.uint8)], "en")
    assert (watched.calls, watched.errors) == (1, 1)
    assert watched.key == "trocr" and watched.languages == frozenset({"en"})
