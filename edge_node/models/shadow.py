"""Shadow mode: a candidate model reads a sample of real requests beside the serving model, never serving.

`ShadowRecognizer` stands in for the serving recognizer of a language: it returns the serving model's readings
unchanged and, for a sampled share of calls, hands the same crops to the candidate on one background thread.
At most one comparison waits at a time (a busy shadow skips samples rather than queueing work or memory), so the
request's latency and the node's memory do not depend on the candidate. The agreement (lines read identically,
after collapsing whitespace) accumulates in `ShadowStats`, which the manager reports to central.
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from edge_node.engines.base import LineReading, TextRecognizer
from edge_node.engines.registry import Routing
from edge_node.errors import ModelError

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShadowStats:
    """What the candidate did so far."""

    lines: int = 0
    agreed: int = 0
    calls: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def agreement(self) -> float | None:
        """Share of compared lines the candidate read exactly as the serving model (None before any)."""
        return self.agreed / self.lines if self.lines else None


def same_text(a: str, b: str) -> bool:
    """Two readings agree when they are equal after collapsing whitespace."""
    return " ".join(a.split()) == " ".join(b.split())


class ShadowRecognizer:
    """The serving recognizer, with a candidate reading a sample of its calls in the background."""

    def __init__(self, serving: TextRecognizer, candidate: TextRecognizer, *, sample: float,
                 rng: random.Random | None = None) -> None:
        self.serving = serving
        self.candidate = candidate
        self.key = serving.key
        self.languages = serving.languages
        self.sample = sample
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._busy = False
        self._stats = ShadowStats()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow-model")

    def recognize(self, crops: list[np.ndarray], language: str) -> list[LineReading]:
        """The serving model's readings; sometimes also queue the candidate on the same crops."""
        readings = self.serving.recognize(crops, language)
        if crops and language in self.candidate.languages and self._rng.random() < self.sample:
            self._submit(crops, language, readings)
        return readings

    def stats(self) -> ShadowStats:
        """A consistent copy of the tally."""
        with self._lock:
            return self._stats

    def close(self, wait: bool = False) -> None:
        """Stop comparing (pending work is dropped unless `wait`)."""
        self._executor.shutdown(wait=wait, cancel_futures=not wait)

    def _submit(self, crops: list[np.ndarray], language: str, served: list[LineReading]) -> None:
        with self._lock:
            if self._busy:
                self._stats = _add(self._stats, skipped=1)
                return
            self._busy = True
        try:
            self._executor.submit(self._compare, list(crops), language, [r.text for r in served])
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                self._busy = False

    def _compare(self, crops: list[np.ndarray], language: str, served: list[str]) -> None:
        try:
            texts = [r.text for r in self.candidate.recognize(crops, language)]
        except ModelError as err:
            _LOGGER.warning("shadow model failed on a sampled request: %s", err)
            with self._lock:
                self._stats = _add(self._stats, calls=1, errors=1)
                self._busy = False
            return
        agreed = sum(same_text(a, b) for a, b in zip(texts, served, strict=False))
        with self._lock:
            self._stats = _add(self._stats, calls=1, lines=len(served), agreed=agreed)
            self._busy = False


def _add(stats: ShadowStats, **more: int) -> ShadowStats:
    return ShadowStats(**{name: getattr(stats, name) + more.get(name, 0)
                          for name in ("lines", "agreed", "calls", "errors", "skipped")})


def shadow_routing(
    routing: Routing, candidate: TextRecognizer, sample: float
) -> tuple[Routing, ShadowRecognizer | None]:
    """`routing` with the primary of the candidate's first language it serves wrapped in a `ShadowRecognizer`
    (registered as KEY+shadow), and that wrapper; the routing unchanged and None when no language matches."""
    language = next((lang for lang in sorted(candidate.languages) if lang in routing.primary), None)
    if language is None:
        return routing, None
    key = routing.primary[language]
    shadow = ShadowRecognizer(routing.recognizers[key], candidate, sample=sample)
    shadow_key = f"{key}+shadow"
    recognizers = {**routing.recognizers, shadow_key: shadow}
    return Routing(recognizers, {**routing.primary, language: shadow_key}, routing.fallback), shadow
