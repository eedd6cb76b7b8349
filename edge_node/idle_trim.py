"""Giving the jobs' freed heap memory back to the system when the job queue goes quiet, never on a request's path.

`trim_heap` (glibc `malloc_trim`) costs 10-30 ms of CPU. Run right after each job, it competes for the cores with
the next request of a burst (about 2.5 ms more pipeline time per price tag on 2 cores, measured with requests
sent one after another); so it runs once no job has run for IDLE_SECONDS, in a worker slot of its own.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from edge_node.engines.runtime import trim_heap

#: Quiet time before a trim: longer than the gap between the requests of a burst, short enough that an idle
#: node gives its memory back at once.
IDLE_SECONDS = 0.5


class IdleTrimmer:
    """Schedules one heap trim after the last job of a run of jobs."""

    def __init__(self, slots: asyncio.Semaphore, executor: Executor) -> None:
        self._slots = slots
        self._executor = executor
        self._dirty = False  # a job ran since the last trim
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    def job_started(self) -> None:
        """A job runs: the heap will need a trim, later."""
        self._dirty = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def queue_idle(self) -> None:
        """No job runs now: trim after IDLE_SECONDS unless one starts meanwhile."""
        if self._dirty and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._start)

    def _start(self) -> None:
        self._timer = None
        if self._task is None or self._task.done():
            self._dirty = False
            self._task = asyncio.create_task(self._trim(), name="ocr-heap-trim")

    async def _trim(self) -> None:
        async with self._slots:  # a job arriving meanwhile finds the other slots (and this thread busy)
            await asyncio.get_running_loop().run_in_executor(self._executor, trim_heap)

    async def stop(self) -> None:
        """Cancel a pending trim and let a running one end."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
