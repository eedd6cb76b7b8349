"""A newly swapped-in model on probation: its calls are counted, and too many failures trip a rollback.

The pipeline falls back to the next engine when the primary raises `ModelError`, so a broken model does not fail
jobs outright: it makes them slower and worse. The watch therefore counts the model's own calls (one per job:
the pipeline reads all of a job's line crops in one call) and the ones that raised. After `window` calls it
decides: an error rate above `max_error_rate` calls `on_trip` once (the manager rolls back), otherwise the
model is confirmed and `on_pass` is called. It trips early once the failures alone already exceed the rate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from edge_node.engines.base import LineReading, TextRecognizer
from edge_node.errors import ModelError

_LOGGER = logging.getLogger(__name__)


class WatchedRecognizer:
    """Delegates to `inner` and keeps the probation tally; thread-safe (workers call it concurrently)."""

    def __init__(self, inner: TextRecognizer, *, window: int, max_error_rate: float,
                 on_trip: Callable[[str], object], on_pass: Callable[[], object]) -> None:
        self.inner = inner
        self.key = inner.key
        self.languages = inner.languages
        self.window = window
        self.max_error_rate = max_error_rate
        self._on_trip = on_trip
        self._on_pass = on_pass
        self._lock = threading.Lock()
        self.calls = 0
        self.errors = 0
        self.decided = False

    def recognize(self, crops: list[np.ndarray], language: str) -> list[LineReading]:
        """Read with the model on probation, counting the call and its failure, if any."""
        try:
            readings = self.inner.recognize(crops, language)
        except ModelError as err:
            self._count(failed=True, detail=str(err))
            raise
        self._count(failed=False, detail="")
        return readings

    def _count(self, *, failed: bool, detail: str) -> None:
        with self._lock:
            if self.decided:
                return
            self.calls += 1
            self.errors += failed
            verdict = self._verdict()
            if verdict is not None:
                self.decided = True
        if verdict == "trip":
            reason = (f"{self.errors} of its first {self.calls} calls failed (limit {self.max_error_rate:.0%} of "
                      f"{self.window})" + (f"; last error: {detail}" if detail else ""))
            _LOGGER.warning("model on probation tripped: %s", reason)
            self._on_trip(reason)
        elif verdict == "pass":
            self._on_pass()

    def _verdict(self) -> str | None:
        """'trip', 'pass' or None (undecided); called under the lock."""
        if self.errors > self.max_error_rate * self.window:
            return "trip"
        if self.calls >= self.window:
            return "trip" if self.errors > self.max_error_rate * self.calls else "pass"
        return None
