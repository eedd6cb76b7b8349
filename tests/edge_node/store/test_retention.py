"""Job retention: exactly the old finished jobs go, with their own rows; queued jobs and the outbox stay."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_node.store import jobs, retention
from edge_node.store.db import connect
from edge_node.store.jobs import JobFailure, NewJob


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "edge.sqlite3")


def finished(conn: sqlite3.Connection, *, fail: bool = False) -> str:
    job, _ = jobs.insert_job(conn, NewJob("shop-a", "u1", "product", {"type": "product"}, "h", 10),
                             jobs.new_job_id())
    jobs.claim_next(conn, 60)
    if fail:
        jobs.fail_job(conn, job.id, JobFailure("INVALID_IMAGE", "bad", exhausted=True))
    else:
        jobs.complete_job(conn, job.id, {"text": "t"}, [("ppocr", "confidence", 0.9)])
    return job.id


def age(conn: sqlite3.Connection, job_id: str, days: float) -> None:
    stamp = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds")
    conn.execute("UPDATE ocr_processing_jobs SET updated_at = ?, created_at = ? WHERE id = ?", (stamp, stamp, job_id))


def count(conn: sqlite3.Connection, table: str, job_id: str, column: str = "job_id") -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (job_id,)).fetchone()[0])  # noqa: S608


def test_old_finished_jobs_go_with_their_rows_and_nothing_else(conn: sqlite3.Connection) -> None:
    old_done, old_failed, recent = finished(conn), finished(conn, fail=True), finished(conn)
    queued, _ = jobs.insert_job(conn, NewJob("shop-a", "u1", "product", {}, "q", 1), jobs.new_job_id())
    for job_id in (old_done, old_failed, queued.id):
        age(conn, job_id, 100)
    age(conn, recent, 10)
    conn.execute("INSERT INTO ocr_corrections (job_id, shop_id, user_id, fields, created_at, updated_at)"
                 " VALUES (?, 'shop-a', 'u1', '{}', 'x', 'x')", (old_done,))
    outbox_before = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert count(conn, "ocr_model_metrics", old_done) == 1 and count(conn, "ocr_error_logs", old_failed) == 1

    purged = retention.purge_finished_jobs(conn, datetime.now(UTC) - timedelta(days=90))

    assert purged == 2
    for gone in (old_done, old_failed):
        assert count(conn, "ocr_processing_jobs", gone, "id") == 0
        assert count(conn, "ocr_model_metrics", gone) == 0
        assert count(conn, "ocr_error_logs", gone) == 0
        assert count(conn, "ocr_corrections", gone) == 0
    assert count(conn, "ocr_processing_jobs", recent, "id") == 1
    assert count(conn, "ocr_processing_jobs", queued.id, "id") == 1, "a queued job is never purged, however old"
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == outbox_before, "unsynced events stay"
    assert retention.purge_finished_jobs(conn, datetime.now(UTC) - timedelta(days=90)) == 0


def test_purging_works_in_batches(conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    ids = [finished(conn) for _ in range(7)]
    for job_id in ids:
        age(conn, job_id, 200)
    assert retention.purge_finished_jobs(conn, datetime.now(UTC) - timedelta(days=90)) == 7
    assert conn.execute("SELECT COUNT(*) FROM ocr_processing_jobs").fetchone()[0] == 0
