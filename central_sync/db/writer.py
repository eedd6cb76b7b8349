"""One batch of classified messages -> one PostgreSQL transaction.

Inside the transaction: lock the batch's nodes, drop seqs already committed (duplicates), write the new ones'
data (jobs upserted by (node_id, job_id), error logs, metrics, node status) with their Kafka outbox rows and the
rejects, and fold the new seqs into each node's contiguous ack. The caller commits, THEN acks what this returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from central_sync.db import rows
from central_sync.db.models import error_logs, jobs, kafka_outbox, model_metrics, nodes, rejects
from central_sync.db.seqs import NodeSeqs, commit_seqs, lock_nodes
from central_sync.inbound import Accepted, Classified, Rejected, StatusReport
from shared_models.model_updates import NodeErrorLog
from shared_models.topics import UpKind

#: Columns an upsert of a job replaces (the key columns stay).
JOB_UPDATE_COLUMNS = [c.name for c in jobs.columns if c.name not in ("id", "node_id", "job_id", "received_at")]


@dataclass(slots=True)
class BatchOutcome:
    """What a committed batch did; `acks` maps node -> (shop, highest contiguous seq, its epoch) to publish."""

    acks: dict[str, tuple[str, int, str | None]] = field(default_factory=dict)
    accepted: int = 0
    stale_epoch: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    outbox: int = 0
    rejects: list[Rejected] = field(default_factory=list)


def _claims(items: Sequence[Classified]) -> dict[str, str]:
    """node -> shop it claims, for every item that touches a node's state."""
    claims: dict[str, str] = {}
    for item in items:
        if isinstance(item, Accepted):
            claims.setdefault(item.envelope.node_id, item.envelope.shop_id)
        elif isinstance(item, StatusReport):
            claims.setdefault(item.status.node_id, item.status.shop_id)
        elif item.seq is not None and item.node_id is not None and item.shop_id is not None:
            claims.setdefault(item.node_id, item.shop_id)
    return claims


def _foreign(item: Classified, node_id: str, shop_id: str, registered: str) -> Rejected:
    return Rejected(
        item.raw, f"node {node_id} is registered under shop {registered}, not {shop_id}", node_id=node_id,
        shop_id=shop_id,
    )


async def _insert(conn: AsyncConnection, table: Any, values: list[dict[str, Any]]) -> None:
    # executemany: the statement is compiled once (cached) and SQLAlchemy batches the rows ("insertmanyvalues").
    if values:
        await conn.execute(table.insert(), values)


def _upsert_statement() -> Any:
    """INSERT ... ON CONFLICT (node_id, job_id) DO UPDATE when the incoming seq is newer, RETURNING the keys."""
    insert = pg_insert(jobs)
    return insert.on_conflict_do_update(
        index_elements=[jobs.c.node_id, jobs.c.job_id],
        set_={name: insert.excluded[name] for name in JOB_UPDATE_COLUMNS},
        where=jobs.c.seq < insert.excluded.seq,
    ).returning(jobs.c.node_id, jobs.c.job_id)


UPSERT_JOB = _upsert_statement()


async def _upsert_jobs(conn: AsyncConnection, items: list[Accepted]) -> set[tuple[str, str]]:
    """Upsert job rows (a newer seq replaces an older one, never the reverse); returns the keys written."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        row = rows.job_row(item)
        key = (row["node_id"], row["job_id"])
        if key not in latest or latest[key]["seq"] < row["seq"]:
            latest[key] = row
    ordered = sorted(latest.values(), key=rows.job_sort_key)
    result = await conn.execute(UPSERT_JOB, ordered)
    return {(r.node_id, r.job_id) for r in result}


async def _update_status(conn: AsyncConnection, updates: list[dict[str, Any]]) -> None:
    if not updates:
        return
    await conn.execute(
        update(nodes)
        .where(
            nodes.c.node_id == bindparam("b_node"),
            or_(nodes.c.status_at.is_(None), nodes.c.status_at <= bindparam("b_at")),
        )
        .values(
            status=bindparam("b_status"),
            status_at=bindparam("b_at"),
            version=bindparam("b_version"),
            model_version=bindparam("b_model_version"),
            model_versions=bindparam("b_model_versions", type_=nodes.c.model_versions.type),
            backlog=bindparam("b_backlog"),
        ),
        updates,
    )


class _Sorter:
    """Splits a batch into duplicates, new data, status reports and rejects, against the locked node state."""

    def __init__(self, state: dict[str, NodeSeqs], outcome: BatchOutcome) -> None:
        self.state = state
        self.outcome = outcome
        self.new: list[Accepted] = []
        self.statuses: list[StatusReport] = []
        self.reject_rows: list[dict[str, Any]] = []
        self.sequenced: set[str] = set()

    def _reject(self, item: Rejected, *, skipped: bool) -> None:
        self.outcome.rejects.append(item)
        self.outcome.rejected += 1
        self.outcome.skipped += int(skipped)
        self.reject_rows.append(rows.reject_row(item, skipped=skipped))

    def add(self, item: Classified) -> None:
        if isinstance(item, StatusReport):
            seqs = self.state[item.status.node_id]
            if seqs.shop_id != item.status.shop_id:
                self._reject(_foreign(item, item.status.node_id, item.status.shop_id, seqs.shop_id), skipped=False)
            else:
                self.statuses.append(item)
            return
        if isinstance(item, Rejected) and (item.seq is None or item.node_id is None or item.shop_id is None):
            self._reject(item, skipped=False)
            return
        node_id, shop_id, seq = (
            (item.envelope.node_id, item.envelope.shop_id, item.envelope.seq)
            if isinstance(item, Accepted)
            else (str(item.node_id), str(item.shop_id), int(item.seq or 0))
        )
        seqs = self.state[node_id]
        if seqs.shop_id != shop_id:
            self._reject(_foreign(item, node_id, shop_id, seqs.shop_id), skipped=False)
            return
        if isinstance(item, Rejected) and not item.skip:
            self._reject(item, skipped=False)  # e.g. a newer schema_version: not acked, the node resends it
            return
        if isinstance(item, Accepted) and not seqs.follows(item.envelope.epoch):
            # In flight from the node's previous database: its data is still data (job upserts are idempotent),
            # but its seq is not in the current epoch's count, and nobody is left to ack it.
            self.outcome.stale_epoch += 1
            self.new.append(item)
            return
        self.sequenced.add(node_id)
        if seqs.is_duplicate(seq):
            self.outcome.duplicates += 1
            return
        seqs.added.add(seq)
        if isinstance(item, Rejected):
            self._reject(item, skipped=True)
        else:
            self.new.append(item)


async def write_batch(
    conn: AsyncConnection, items: Sequence[Classified], topic_for: Callable[[str], str]
) -> BatchOutcome:
    """Write one batch inside the caller's transaction; `topic_for` maps an outbox kind to its Kafka topic."""
    outcome = BatchOutcome()
    state = await lock_nodes(conn, _claims(items))
    sorter = _Sorter(state, outcome)
    for item in items:
        sorter.add(item)
    new = sorted(sorter.new, key=lambda i: (i.envelope.node_id, i.envelope.seq))
    job_items = [
        i for i in new if i.envelope.kind in (UpKind.RESULTS, UpKind.ERRORS) and not isinstance(i.body, NodeErrorLog)
    ]
    written = await _upsert_jobs(conn, job_items) if job_items else set()
    outbox: list[dict[str, Any]] = []
    for item in job_items:
        kind, key, value = rows.job_outbox(item)
        if (item.envelope.node_id, key) in written:
            outbox.append({"topic": topic_for(kind), "key": key, "value": value})
    error_rows = [r for r in (rows.error_row(i) for i in job_items) if r is not None]
    error_rows.extend(rows.node_error_row(i) for i in new if isinstance(i.body, NodeErrorLog))
    metric_items = [i for i in new if i.envelope.kind is UpKind.METRICS]
    metric_rows = [r for i in metric_items for r in rows.metric_rows(i)]
    for item in metric_items:
        kind, key, value = rows.metrics_outbox(item)
        outbox.append({"topic": topic_for(kind), "key": key, "value": value})
    statuses: list[Accepted | StatusReport] = [i for i in new if i.envelope.kind is UpKind.STATUS]
    statuses.extend(sorter.statuses)
    await _insert(conn, error_logs, error_rows)
    await _insert(conn, model_metrics, metric_rows)
    await _insert(conn, kafka_outbox, outbox)
    await _insert(conn, rejects, sorter.reject_rows)
    await _update_status(conn, [rows.status_row(i) for i in statuses])
    seen = sorter.sequenced | {i.status.node_id for i in sorter.statuses}
    acked = await commit_seqs(conn, state, seen)
    outcome.acks = {node_id: (state[node_id].shop_id, acked[node_id], state[node_id].epoch)
                    for node_id in sorted(sorter.sequenced)}
    outcome.accepted = len(new)
    outcome.outbox = len(outbox)
    return outcome
