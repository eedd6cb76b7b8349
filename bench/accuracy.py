"""The accuracy benchmark's framework: metric rows with goals, a call recorder that times every backend call and
keeps going past per-item failures, and the result object every per-set evaluator returns.

A failed call (a typed pipeline error, an HTTP error envelope, a network error) is recorded with its item and
code and scored as an empty prediction, so a crash on one image counts against the figures instead of hiding
them. Timing is the wall time around each successful call (``time.perf_counter``), plus the node's own
``processing_time_ms`` when the answer carries one; p50/p95 per call group (for example ``crop`` and ``shelf``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from bench.client import Backend, BackendError, Timed
from bench.metrics import percentile
from shared_models.ocr import Line, OcrOptions, OcrResult

T = TypeVar("T")


@dataclass(frozen=True)
class Goal:
    """A target a figure must reach: ``op`` is '>=' (higher is better) or '<=' (lower is better)."""

    op: Literal[">=", "<="]
    value: float

    def met(self, figure: float) -> bool:
        """Whether ``figure`` reaches the goal."""
        return figure >= self.value if self.op == ">=" else figure <= self.value

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.value:g}"


@dataclass(frozen=True)
class Metric:
    """One reported figure; ratios are on a 0-100 scale and ``unit`` is appended when shown ('%' or '')."""

    key: str
    label: str
    value: float
    unit: str = "%"
    goal: Goal | None = None
    anchor: str = ""

    def shown(self) -> str:
        """The figure as the docs table shows it."""
        return f"{self.value:.2f}{self.unit}"

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "goal": str(self.goal) if self.goal else None,
            "goal_met": self.goal.met(self.value) if self.goal else None,
            "anchor": self.anchor or None,
        }


def timing_summary(wall_ms: Sequence[float], server_ms: Sequence[float]) -> dict[str, float | int | None]:
    """Count and p50/p95 of wall and server times (server figures None when the backend gave none)."""
    return {
        "calls": len(wall_ms),
        "wall_ms_p50": percentile(wall_ms, 50) if wall_ms else None,
        "wall_ms_p95": percentile(wall_ms, 95) if wall_ms else None,
        "server_ms_p50": percentile(server_ms, 50) if server_ms else None,
        "server_ms_p95": percentile(server_ms, 95) if server_ms else None,
    }


@dataclass
class Calls:
    """Calls the backend for the evaluators, timing each call and recording failures instead of raising."""

    backend: Backend
    progress: Callable[[str], None] | None = None
    wall_ms: dict[str, list[float]] = field(default_factory=dict)
    server_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    def _record(self, group: str, item: str, call: Callable[[], Timed[T]]) -> T | None:
        try:
            timed = call()
        except BackendError as err:
            self.errors.append({"item": item, "code": err.code, "message": err.message})
            return None
        except Exception as err:  # a bench scores a crash as a miss, and reports it
            self.errors.append({"item": item, "code": type(err).__name__, "message": str(err)})
            return None
        self.wall_ms.setdefault(group, []).append(timed.wall_ms)
        if timed.server_ms is not None:
            self.server_ms.setdefault(group, []).append(timed.server_ms)
        return timed.value

    def image(
        self, item: str, data: bytes, options: OcrOptions, filename: str = "image", group: str = "image"
    ) -> OcrResult | None:
        """The full pipeline on an encoded file; None when the call failed."""
        return self._record(group, item, lambda: self.backend.image(data, options, filename))

    def line(self, item: str, image: np.ndarray, options: OcrOptions, group: str = "line") -> Line | None:
        """One-line recognition of an RGB crop; None when the call failed."""
        return self._record(group, item, lambda: self.backend.line(image, options))

    def track(self, items: Sequence[T], label: str) -> Iterator[T]:
        """Yield ``items``, reporting progress about every 10% when a progress sink is set."""
        step = max(1, len(items) // 10)
        for index, item in enumerate(items, start=1):
            yield item
            if self.progress and (index % step == 0 or index == len(items)):
                self.progress(f"{label}: {index}/{len(items)} done, {len(self.errors)} errors")

    def timing(self) -> dict[str, dict[str, float | int | None]]:
        """Timing per call group."""
        groups = list(dict.fromkeys([*self.wall_ms, *self.server_ms]))
        return {group: timing_summary(self.wall_ms.get(group, []), self.server_ms.get(group, [])) for group in groups}


@dataclass
class SetResult:
    """What one set's evaluator measured; ``notes`` are one-line breakdowns shown under the figures."""

    name: str
    n_items: int
    n_available: int
    primary_group: str
    metrics: list[Metric]
    calls: Calls
    breakdown: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def metric(self, key: str) -> Metric:
        """The metric with this key."""
        for metric in self.metrics:
            if metric.key == key:
                return metric
        raise KeyError(key)

    def p50_ms(self) -> float | None:
        """Wall-time p50 of the set's main call group (ms per image or per crop)."""
        timing = self.calls.timing().get(self.primary_group)
        value = timing["wall_ms_p50"] if timing else None
        return float(value) if value is not None else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON report body (without run metadata)."""
        return {
            "set": self.name,
            "n_items": self.n_items,
            "n_available": self.n_available,
            "metrics": {metric.key: metric.as_dict() for metric in self.metrics},
            "timing": self.calls.timing(),
            "primary_group": self.primary_group,
            "errors": self.calls.errors,
            "breakdown": self.breakdown,
            "notes": self.notes,
            "items": self.items,
        }


#: An evaluator runs one set: (data folder, call recorder, limit) -> result.
Evaluator = Callable[[Path, Calls, int | None], SetResult]


def first(items: Sequence[T], limit: int | None) -> list[T]:
    """The first ``limit`` items (all when None)."""
    return list(items) if limit is None else list(items[:limit])


def stderr_progress(message: str) -> None:
    """Progress sink for the CLI."""
    print(message, file=sys.stderr, flush=True)
