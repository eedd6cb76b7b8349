"""The outbox SQL: reading in seq order, resends, deletes up to an ack, backlog, metrics snapshots."""

from __future__ import annotations

import json

from edge_node.store import outbox as outbox_store
from edge_node.store.db import Database
from tests.edge_node.sync.conftest import add_results


def test_read_after_returns_rows_in_seq_order_without_writing(db: Database) -> None:
    seqs = add_results(db, 5)
    rows = db.run_sync(outbox_store.read_after, seqs[1], 2)
    assert [row.seq for row in rows] == seqs[2:4]
    assert rows[0].kind == "results" and json.loads(rows[0].payload)["job_id"] == "job-2"
    assert all(row.attempts == 0 for row in db.run_sync(outbox_store.read_after, 0, 10))


def test_take_for_resend_counts_attempts_and_skips_deleted_rows(db: Database) -> None:
    seqs = add_results(db, 4)
    db.run_sync(outbox_store.delete_through, seqs[0])
    rows = db.run_sync(outbox_store.take_for_resend, [seqs[3], seqs[0], seqs[2]])
    assert [row.seq for row in rows] == [seqs[2], seqs[3]]
    assert [row.attempts for row in rows] == [1, 1]
    assert db.run_sync(outbox_store.take_for_resend, [seqs[2]])[0].attempts == 2


def test_take_for_resend_handles_more_seqs_than_sqlite_binds_at_once(db: Database) -> None:
    seqs = add_results(db, outbox_store.MAX_BOUND_SEQS + 10)
    assert len(db.run_sync(outbox_store.take_for_resend, seqs)) == len(seqs)


def test_delete_through_and_backlog(db: Database) -> None:
    seqs = add_results(db, 6)
    assert db.run_sync(outbox_store.backlog) == 6
    assert db.run_sync(outbox_store.delete_through, seqs[3]) == 4
    assert db.run_sync(outbox_store.backlog) == 2
    assert db.run_sync(outbox_store.delete_through, seqs[3]) == 0  # acks may repeat
    db.run_sync(outbox_store.delete_seqs, [seqs[5]])
    assert [row.seq for row in db.run_sync(outbox_store.read_after, 0, 10)] == [seqs[4]]


def test_metrics_snapshot_is_queued_once_per_change(db: Database) -> None:
    seq, summary = db.run_sync(outbox_store.append_metrics, "node-1", "shop-1", None)
    assert seq is not None and summary["total_requests"] == 0
    (row,) = db.run_sync(outbox_store.read_after, seq - 1, 10)
    body = json.loads(row.payload)
    assert row.kind == "metrics"
    assert (body["node_id"], body["shop_id"], body["summary"]) == ("node-1", "shop-1", summary)
    again, _ = db.run_sync(outbox_store.append_metrics, "node-1", "shop-1", summary)
    assert again is None
    assert db.run_sync(outbox_store.backlog) == 1
