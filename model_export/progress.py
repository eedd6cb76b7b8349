"""Progress of the long steps on stderr: `[2/6] quantising ... done (4.1 s)`, with a heartbeat while a step runs.

Exporting or quantising a 60M-parameter model takes tens of seconds to minutes with no output of its own, so a
background thread writes `still <step> (30 s)` every `heartbeat` seconds until the step ends.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """Numbered steps written to a stream (stderr by default); `quiet` writes nothing."""

    def __init__(self, total: int, *, stream: TextIO | None = None, quiet: bool = False, heartbeat: float = 15.0):
        self.total = total
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.heartbeat = heartbeat
        self._number = 0

    def _write(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text)
            self.stream.flush()

    def note(self, text: str) -> None:
        """A line of information between steps."""
        self._write(f"      {text}\n")

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Announce a step, keep a heartbeat while it runs, and report its duration (or its failure)."""
        self._number += 1
        self._write(f"[{self._number}/{self.total}] {label} ...\n")
        start = time.perf_counter()
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat):
                self._write(f"      still {label} ({time.perf_counter() - start:.0f} s)\n")

        ticker = threading.Thread(target=beat, name="model-export-progress", daemon=True)
        ticker.start()
        try:
            yield
        except BaseException:
            self._write(f"      {label}: failed after {time.perf_counter() - start:.1f} s\n")
            raise
        finally:
            done.set()
            ticker.join()
        self._write(f"      done in {time.perf_counter() - start:.1f} s\n")
