"""The job queue's direct hand-over: a job submitted to an idle node is stored claimed and runs at once, never
ahead of a waiting job, and `wait` needs no database read for a job this process is running."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from support import encode, render_lines

from edge_node.config import EdgeConfig
from edge_node.engines.registry import EngineSet
from edge_node.store import jobs as job_store
from edge_node.store.db import Database, transaction
from edge_node.store.images import ImageVault
from edge_node.store.jobs import JobRecord, NewJob
from edge_node.worker import JobQueue
from shared_models.jobs import JobStatus

LABEL = encode(render_lines(["MILK 1L", "Tk 120.00"]))


def _new_job() -> NewJob:
    return NewJob("shop-a", "clerk-1", "product", {"type": "product"}, "hash", len(LABEL))


def _idle_config(edge_config: EdgeConfig) -> EdgeConfig:
    # Idle workers would poll only every 30 s: a job that runs at once was handed over, not claimed by a poll.
    worker = edge_config.worker.model_copy(update={"poll_interval_seconds": 30.0})
    return edge_config.model_copy(update={"worker": worker})


@pytest.fixture
async def database(edge_config: EdgeConfig) -> AsyncIterator[Database]:
    db = Database(edge_config.storage.database_path)
    yield db
    db.close()


def _vault(config: EdgeConfig) -> ImageVault:
    return ImageVault(config.storage.data_dir / "images", b"k" * 32, retention_days=1)


def _insert_queued(conn: sqlite3.Connection, vault: ImageVault) -> JobRecord:
    """A job queued earlier (e.g. by a previous process), its image in the vault."""
    job_id = job_store.new_job_id()
    with transaction(conn):
        vault.put(conn, job_id, LABEL)
        return job_store.insert_job(conn, _new_job(), job_id)[0]


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    calls: list[Any] = []
    original: Callable[..., Any] = getattr(job_store, name)

    def counted(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(job_store, name, counted)
    return calls


async def test_idle_queue_hands_a_new_job_straight_to_a_worker(
    edge_config: EdgeConfig, engines: EngineSet, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _idle_config(edge_config)
    queue = JobQueue(config, database, engines, _vault(config))
    await queue.start()
    await asyncio.sleep(0.3)  # the workers' first look at the queue (empty) is done: they wait now
    claims = _counting(monkeypatch, "claim_next")
    reads = _counting(monkeypatch, "get_job_any")
    try:
        submitted = await queue.submit(_new_job(), LABEL)
        assert submitted.created and submitted.job.status is JobStatus.PROCESSING and submitted.job.attempts == 1
        done = await queue.wait(submitted.job.id, 60)
    finally:
        await queue.stop(grace_seconds=5)
    assert done.status is JobStatus.COMPLETED and "120" in (done.result or {})["text"]
    assert claims == [] and reads == []  # no claim round trip, no read-back of the job to wait on it
    stored = database.run_sync(job_store.get_job_any, done.id)
    assert stored is not None and stored.status is JobStatus.COMPLETED and stored.attempts == 1


async def test_a_new_job_never_overtakes_a_waiting_one(
    edge_config: EdgeConfig, engines: EngineSet, database: Database
) -> None:
    config = _idle_config(edge_config)
    vault = _vault(config)
    queue = JobQueue(config, database, engines, vault)  # workers not started: the first job waits
    waiting = database.run_sync(_insert_queued, vault)
    submitted = await queue.submit(_new_job(), LABEL)
    assert submitted.job.status is JobStatus.QUEUED and submitted.depth == 1
    await queue.start()
    try:
        first = await queue.wait(waiting.id, 60)
        second = await queue.wait(submitted.job.id, 60)
    finally:
        await queue.stop(grace_seconds=5)
    assert first.status is second.status is JobStatus.COMPLETED
    assert first.started_at is not None and second.started_at is not None
    assert first.started_at <= second.started_at  # the waiting job went first


async def test_busy_slots_queue_the_job_for_the_workers(
    edge_config: EdgeConfig, engines: EngineSet, database: Database
) -> None:
    worker = edge_config.worker.model_copy(update={"workers": 1})
    config = edge_config.model_copy(update={"worker": worker})
    queue = JobQueue(config, database, engines, _vault(config))
    await queue.start()
    try:
        first = await queue.submit(_new_job(), LABEL)  # takes the only slot
        second = await queue.submit(_new_job(), LABEL)
        assert first.job.status is JobStatus.PROCESSING and second.job.status is JobStatus.QUEUED
        done = [await queue.wait(first.job.id, 60), await queue.wait(second.job.id, 60)]
    finally:
        await queue.stop(grace_seconds=5)
    assert [job.status for job in done] == [JobStatus.COMPLETED, JobStatus.COMPLETED]
