"""SQLite persistence of the model-update state: small JSON documents under named slots (`model_state` table).

Slots: `serving` (the installed bundle that serves, if any), `previous` (what it replaced, for rollback),
`shadow` (a bundle running in shadow mode), `revision` (the newest announcement applied) and one
`failed:<sha256>` per bundle this node refused, so a bad bundle is not downloaded again and again.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from edge_node.store import outbox
from edge_node.store.db import transaction, utc_now

FAILED_PREFIX = "failed:"


def get_slot(conn: sqlite3.Connection, slot: str) -> dict[str, Any] | None:
    """The document stored under `slot`, or None."""
    row = conn.execute("SELECT data FROM model_state WHERE slot = ?", (slot,)).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def put_slots(conn: sqlite3.Connection, changes: dict[str, dict[str, Any] | None]) -> None:
    """Write (or, for None, delete) several slots in one transaction: a swap is recorded whole or not at all."""
    with transaction(conn):
        for slot, data in changes.items():
            if data is None:
                conn.execute("DELETE FROM model_state WHERE slot = ?", (slot,))
            else:
                conn.execute(
                    "INSERT INTO model_state (slot, data, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(slot) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                    (slot, json.dumps(data), utc_now()),
                )


def failed_bundles(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """sha256 -> failure document, for every bundle this node refused."""
    rows = conn.execute("SELECT slot, data FROM model_state WHERE slot LIKE ?", (FAILED_PREFIX + "%",))
    return {slot.removeprefix(FAILED_PREFIX): dict(json.loads(data)) for slot, data in rows}


def record_failure(conn: sqlite3.Connection, sha256: str, failure: dict[str, Any] | None,
                   error_log: dict[str, Any], sync: bool) -> None:
    """One failed update, in one transaction: remembered (when permanent), logged, and queued for central."""
    with transaction(conn):
        if failure is not None:
            conn.execute(
                "INSERT INTO model_state (slot, data, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(slot) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                (FAILED_PREFIX + sha256, json.dumps(failure), utc_now()),
            )
        conn.execute(
            "INSERT INTO ocr_error_logs (job_id, error_code, error_message, details, attempt, created_at)"
            " VALUES (NULL, ?, ?, ?, 0, ?)",
            (error_log["code"], error_log["message"], json.dumps({"model": error_log.get("model")}), utc_now()),
        )
        if sync:
            outbox.append(conn, outbox.ERRORS_KIND, error_log)


def queue_metrics(conn: sqlite3.Connection, body: dict[str, Any]) -> None:
    """Queue a metrics body (`{"metrics": [...]}`) for central."""
    outbox.append(conn, outbox.METRICS_KIND, body)
