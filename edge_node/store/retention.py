"""Retention of finished jobs: a node runs for months, so its job history must not grow forever.

A finished job (completed, failed or dead) whose last change is older than `storage.job_retention_days` is
deleted with what only it uses: its error log rows, its corrections and its per-job metric rows. Its outbox rows
stay: they carry their own copy of the event and go when central acknowledges them, so a node that was offline
longer than the retention still syncs everything. Its stored image goes with the image purge (an image whose job
is gone is an orphan). Queued and running jobs are never touched.

Work is done in batches, each its own transaction, so the database thread is never held for long.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from edge_node.store.db import transaction
from shared_models.jobs import JobStatus

#: Jobs deleted per transaction.
BATCH = 2000
_FINAL = tuple(status.value for status in JobStatus if status.is_final)


def purge_finished_jobs(conn: sqlite3.Connection, cutoff: datetime) -> int:
    """Delete finished jobs last changed before `cutoff` (and their error logs, corrections and metrics rows);
    returns how many jobs went."""
    purged = 0
    marks = ",".join("?" * len(_FINAL))
    while True:
        with transaction(conn):
            ids = [row[0] for row in conn.execute(
                f"SELECT id FROM ocr_processing_jobs WHERE status IN ({marks}) AND updated_at < ? LIMIT ?",  # noqa: S608
                (*_FINAL, cutoff.isoformat(timespec="milliseconds"), BATCH),
            )]
            if not ids:
                return purged
            rows = [(job_id,) for job_id in ids]
            for table in ("ocr_error_logs", "ocr_corrections", "ocr_model_metrics"):
                conn.executemany(f"DELETE FROM {table} WHERE job_id = ?", rows)  # noqa: S608 - fixed table names
            conn.executemany("DELETE FROM ocr_processing_jobs WHERE id = ?", rows)
        purged += len(ids)
        if len(ids) < BATCH:
            return purged

