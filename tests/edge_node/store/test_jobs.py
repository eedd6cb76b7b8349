"""The SQLite queue: claim, complete, fail/retry/dead, leases, idempotency, one transaction per outcome."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from edge_node.store import jobs
from edge_node.store.db import connect, transaction
from edge_node.store.jobs import JobFailure, NewJob
from shared_models.jobs import JobStatus


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "edge.sqlite3")


def _job(key: str | None = None) -> NewJob:
    return NewJob("shop-a", "u1", "product", {"type": "product"}, "abc", 10, idempotency_key=key)


def test_schema_is_wal_and_versioned(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1


def test_claim_complete_writes_result_metrics_and_outbox(conn: sqlite3.Connection) -> None:
    job, created = jobs.insert_job(conn, _job(), jobs.new_job_id())
    assert created and job.status is JobStatus.QUEUED
    claimed = jobs.claim_next(conn, lease_seconds=60)
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1
    assert jobs.claim_next(conn, lease_seconds=60) is None
    done = jobs.complete_job(conn, job.id, {"text": "hi", "confidence": 0.9, "model_used": "ppocr"},
                             [("ppocr", "confidence", 0.9)])
    assert done is not None and done.status is JobStatus.COMPLETED and done.result == {
        "text": "hi", "confidence": 0.9, "model_used": "ppocr"}
    outbox = conn.execute("SELECT kind, payload FROM outbox").fetchall()
    assert [row["kind"] for row in outbox] == ["results"]
    assert json.loads(outbox[0]["payload"])["job_id"] == job.id
    assert conn.execute("SELECT COUNT(*) FROM ocr_model_metrics").fetchone()[0] == 1
    # A second completion of the same job (a duplicate run) changes nothing.
    assert jobs.complete_job(conn, job.id, {"text": "again"}, []) is None
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1


def test_retry_then_dead_keeps_every_error(conn: sqlite3.Connection) -> None:
    job, _ = jobs.insert_job(conn, _job(), jobs.new_job_id())
    jobs.claim_next(conn, 60)
    retried = jobs.fail_job(conn, job.id, JobFailure("MODEL_ERROR", "boom", retry_at=time.time() + 3600))
    assert retried is not None and retried.status is JobStatus.QUEUED
    assert jobs.claim_next(conn, 60) is None  # not before its retry time
    conn.execute("UPDATE ocr_processing_jobs SET available_at = 0")
    jobs.claim_next(conn, 60)
    dead = jobs.fail_job(conn, job.id, JobFailure("MODEL_ERROR", "boom again", exhausted=True))
    assert dead is not None and dead.status is JobStatus.DEAD and dead.attempts == 2
    errors = conn.execute("SELECT error_code, attempt FROM ocr_error_logs ORDER BY id").fetchall()
    assert [(r["error_code"], r["attempt"]) for r in errors] == [("MODEL_ERROR", 1), ("MODEL_ERROR", 2)]
    assert [r["kind"] for r in conn.execute("SELECT kind FROM outbox")] == ["errors"]


def test_expired_lease_and_restart_requeue(conn: sqlite3.Connection) -> None:
    first, _ = jobs.insert_job(conn, _job(), jobs.new_job_id())
    second, _ = jobs.insert_job(conn, _job(), jobs.new_job_id())
    jobs.claim_next(conn, lease_seconds=-1)  # lease already over
    jobs.claim_next(conn, lease_seconds=600)
    assert jobs.requeue_expired_leases(conn) == 1
    assert jobs.requeue_processing(conn) == 1
    assert jobs.queue_counts(conn)[JobStatus.QUEUED.value] == 2
    assert {first.id, second.id} == {r["id"] for r in conn.execute("SELECT id FROM ocr_processing_jobs")}


def test_idempotency_key_returns_the_same_job(conn: sqlite3.Connection) -> None:
    job, created = jobs.insert_job(conn, _job("k1"), jobs.new_job_id())
    again, created_again = jobs.insert_job(conn, _job("k1"), jobs.new_job_id())
    assert created and not created_again and again.id == job.id
    assert conn.execute("SELECT COUNT(*) FROM ocr_processing_jobs").fetchone()[0] == 1


def test_get_job_hides_other_shops(conn: sqlite3.Connection) -> None:
    job, _ = jobs.insert_job(conn, _job(), jobs.new_job_id())
    assert jobs.get_job(conn, job.id, "shop-a") is not None
    assert jobs.get_job(conn, job.id, "shop-b") is None


def test_rejected_request_is_a_failed_job_with_its_error(conn: sqlite3.Connection) -> None:
    rejected = jobs.insert_rejected(conn, _job(), JobFailure("INVALID_IMAGE", "not an image"))
    assert rejected.status is JobStatus.FAILED and rejected.error_code == "INVALID_IMAGE"
    assert conn.execute("SELECT COUNT(*) FROM ocr_error_logs WHERE job_id = ?", (rejected.id,)).fetchone()[0] == 1


def test_job_inserted_claimed_is_recovered_like_a_claimed_one(conn: sqlite3.Connection) -> None:
    # The direct hand-over: the job is stored already claimed (attempt 1, lease set), nothing else can claim it.
    job, created = jobs.insert_job(conn, _job(), jobs.new_job_id(), lease_seconds=60.0)
    assert created and job.status is JobStatus.PROCESSING and job.attempts == 1 and job.started_at is not None
    assert jobs.claim_next(conn, 60.0) is None
    # The process dies: at start-up the job goes back to the queue and runs again as attempt 2.
    assert jobs.requeue_processing(conn) == 1
    again = jobs.claim_next(conn, 60.0)
    assert again is not None and again.id == job.id and again.attempts == 2
    # A worker that hangs past the lease loses it the same way.
    lapsed, _ = jobs.insert_job(conn, _job(), jobs.new_job_id(), lease_seconds=0.01)
    time.sleep(0.02)
    assert jobs.requeue_expired_leases(conn) == 1
    assert jobs.get_job_any(conn, lapsed.id).status is JobStatus.QUEUED  # type: ignore[union-attr]


def test_waiting_counts_counts_queued_and_runnable(conn: sqlite3.Connection) -> None:
    assert jobs.waiting_counts(conn) == (0, 0)
    first, _ = jobs.insert_job(conn, _job(), jobs.new_job_id())
    jobs.insert_job(conn, _job(), jobs.new_job_id(), lease_seconds=60.0)  # processing: not waiting
    conn.execute("UPDATE ocr_processing_jobs SET available_at = ? WHERE id = ?", (time.time() + 60, first.id))
    jobs.insert_job(conn, _job(), jobs.new_job_id())
    assert jobs.waiting_counts(conn) == (2, 1)  # one of the two waits for its retry time


def test_nested_transaction_joins_the_outer_one(conn: sqlite3.Connection) -> None:
    def insert_then_fail() -> None:
        with transaction(conn):
            jobs.insert_job(conn, _job(), jobs.new_job_id())  # its own `with transaction` joins: no commit yet
            raise RuntimeError("the outer step fails")

    with pytest.raises(RuntimeError):
        insert_then_fail()
    assert not conn.in_transaction
    assert jobs.waiting_counts(conn) == (0, 0)  # rolled back together
