"""The outbox: rows waiting for the central service's ack (DESIGN §2 steps 5-6, §5).

Job outcomes are appended by `store.jobs` in the job's final transaction; this module reads them in `seq`
order for the publisher, deletes them once central has acknowledged them, counts the backlog, and queues
metrics snapshots. `attempts` counts the resends of a row after an ack timeout (a first send writes nothing).
Every function takes the connection first and runs on the database thread.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from edge_node.store.db import transaction, utc_now
from edge_node.store.metrics import summary

#: The outbox kind of a metrics snapshot (shared_models.topics.UpKind.METRICS).
METRICS_KIND = "metrics"
#: Outbox kind of failed jobs and of node-level error logs (central tells them apart by the body).
ERRORS_KIND = "errors"
#: SQLite allows 32766 host parameters; stay well under it when a list of seqs is bound.
MAX_BOUND_SEQS = 500


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One outbox row; `payload` is the JSON text exactly as stored."""

    seq: int
    kind: str
    payload: str
    created_at: str
    attempts: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> OutboxRow:
        return cls(seq=row["seq"], kind=row["kind"], payload=row["payload"], created_at=row["created_at"],
                   attempts=row["attempts"])


def read_after(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[OutboxRow]:
    """Up to `limit` rows with seq > `after_seq`, in seq order (a first send: nothing is written)."""
    rows = conn.execute("SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()
    return [OutboxRow.from_row(row) for row in rows]


def take_for_resend(conn: sqlite3.Connection, seqs: list[int]) -> list[OutboxRow]:
    """The rows among `seqs` that still exist, in seq order, each with `attempts` (resends so far) + 1."""
    found: list[OutboxRow] = []
    with transaction(conn):
        for start in range(0, len(seqs), MAX_BOUND_SEQS):
            chunk = seqs[start:start + MAX_BOUND_SEQS]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"UPDATE outbox SET attempts = attempts + 1 WHERE seq IN ({marks}) RETURNING *", chunk
            ).fetchall()
            found.extend(OutboxRow.from_row(row) for row in rows)
    return sorted(found, key=lambda row: row.seq)


def delete_through(conn: sqlite3.Connection, seq: int) -> int:
    """Delete every row with seq <= `seq` (central acknowledged them); returns how many went."""
    return conn.execute("DELETE FROM outbox WHERE seq <= ?", (seq,)).rowcount


def delete_seqs(conn: sqlite3.Connection, seqs: list[int]) -> None:
    """Delete the given rows (ones that can never be sent)."""
    conn.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in seqs])


def epoch(conn: sqlite3.Connection) -> str:
    """This database's outbox epoch (made when the database was created; see shared_models.messages)."""
    return str(conn.execute("SELECT value FROM node_meta WHERE key = 'outbox_epoch'").fetchone()[0])


def backlog(conn: sqlite3.Connection) -> int:
    """Rows not yet acknowledged by central."""
    return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def append(conn: sqlite3.Connection, kind: str, payload: dict[str, Any]) -> int:
    """Queue one row; returns its seq."""
    cursor = conn.execute(
        "INSERT INTO outbox (kind, payload, created_at) VALUES (?, ?, ?)", (kind, json.dumps(payload), utc_now())
    )
    return int(cursor.lastrowid or 0)


def metrics_snapshot(conn: sqlite3.Connection, node_id: str, shop_id: str) -> dict[str, Any]:
    """The body of a metrics row: the /metrics summary of this node at this moment."""
    return {"node_id": node_id, "shop_id": shop_id, "timestamp": utc_now(), "summary": summary(conn)}


def append_metrics(conn: sqlite3.Connection, node_id: str, shop_id: str,
                   unless_summary: dict[str, Any] | None = None) -> tuple[int | None, dict[str, Any]]:
    """Queue a metrics snapshot; skipped (seq None) when the summary equals `unless_summary`.

    Returns (seq or None, the summary), so the caller can pass the summary back next time: an idle node
    offline for days then queues one snapshot, not one per interval.
    """
    with transaction(conn):
        body = metrics_snapshot(conn, node_id, shop_id)
        if unless_summary is not None and body["summary"] == unless_summary:
            return None, body["summary"]
        return append(conn, METRICS_KIND, body), body["summary"]
