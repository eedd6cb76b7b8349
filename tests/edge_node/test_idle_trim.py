"""The heap is trimmed once the queue has been quiet for a while after jobs, and never while jobs keep coming."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from edge_node import idle_trim
from edge_node.idle_trim import IdleTrimmer


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(idle_trim, "trim_heap", lambda: calls.append(1))
    monkeypatch.setattr(idle_trim, "IDLE_SECONDS", 0.05)
    return calls


async def test_one_trim_after_the_last_job_of_a_burst(trims: list[int]) -> None:
    with ThreadPoolExecutor(1) as executor:
        trimmer = IdleTrimmer(asyncio.Semaphore(1), executor)
        trimmer.queue_idle()  # nothing ran yet: nothing to give back
        await asyncio.sleep(0.1)
        assert trims == []
        for _ in range(3):  # requests one after another, each within the quiet time of the one before
            trimmer.job_started()
            trimmer.queue_idle()
            await asyncio.sleep(0.01)
        assert trims == []
        await asyncio.sleep(0.15)
        assert trims == [1]
        trimmer.queue_idle()  # quiet again, with no job since: no second trim
        await asyncio.sleep(0.1)
        assert trims == [1]
        await trimmer.stop()


async def test_stop_cancels_a_pending_trim(trims: list[int]) -> None:
    with ThreadPoolExecutor(1) as executor:
        trimmer = IdleTrimmer(asyncio.Semaphore(1), executor)
        trimmer.job_started()
        trimmer.queue_idle()
        await trimmer.stop()
        await asyncio.sleep(0.1)
        assert trims == []
