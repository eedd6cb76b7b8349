"""Per-node ack bookkeeping in PostgreSQL: `nodes.acked_seq` (highest contiguous committed seq) plus
`node_pending_seqs` (seqs committed above a gap).

Every batch transaction locks the rows of its nodes (`SELECT ... FOR UPDATE`, in node_id order so two replicas
never deadlock), so replicas that receive interleaved seqs of the same node take turns, and each one sees what the
other committed. The state lives only in the database, so it survives restarts.

Epochs (shared_models.messages): a node whose database is replaced counts its seqs from 1 again under a later
epoch. Its first message of a later epoch restarts the bookkeeping (acked 0, no pending seqs); a message of an
earlier epoch (one already in flight when the database was replaced) is written but leaves the seqs alone. The
first epoch a node reports is adopted as it is (a node upgraded to epochs keeps counting where it was).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from central_sync.db.models import nodes, pending_seqs


@dataclass(slots=True)
class NodeSeqs:
    """A locked node's registered shop, contiguous seq and pending seqs, plus what this batch adds."""

    shop_id: str
    acked: int
    epoch: str | None = None
    pending: set[int] = field(default_factory=set)
    added: set[int] = field(default_factory=set)
    restarted: bool = False  # a later epoch began in this batch: the stored pending seqs are void
    epoch_changed: bool = False

    def is_duplicate(self, seq: int) -> bool:
        """True when this seq was already committed (before or earlier in this batch)."""
        return seq <= self.acked or seq in self.pending or seq in self.added

    def follows(self, epoch: str | None) -> bool:
        """Take a message's epoch into account; False when it belongs to an earlier epoch (not sequenced)."""
        if epoch is None or epoch == self.epoch:
            return True
        if self.epoch is None:
            self.epoch, self.epoch_changed = epoch, True
            return True
        if epoch < self.epoch:
            return False
        self.epoch, self.epoch_changed, self.restarted = epoch, True, True
        self.acked = 0
        self.pending.clear()
        self.added.clear()
        return True


def advance(acked: int, seqs: Iterable[int]) -> tuple[int, set[int]]:
    """The new highest contiguous seq from `acked` over `seqs`, and the seqs left above the gap."""
    remaining = {seq for seq in seqs if seq > acked}
    while acked + 1 in remaining:
        acked += 1
        remaining.discard(acked)
    return acked, remaining


async def lock_nodes(conn: AsyncConnection, claims: Mapping[str, str]) -> dict[str, NodeSeqs]:
    """Register unknown nodes under the shop they claim, lock all of them, and load their seq state."""
    ids = sorted(claims)
    if not ids:
        return {}
    await conn.execute(
        pg_insert(nodes)
        .values([{"node_id": node_id, "shop_id": claims[node_id]} for node_id in ids])
        .on_conflict_do_nothing(index_elements=[nodes.c.node_id])
    )
    rows = await conn.execute(
        select(nodes.c.node_id, nodes.c.shop_id, nodes.c.acked_seq, nodes.c.epoch)
        .where(nodes.c.node_id.in_(ids))
        .order_by(nodes.c.node_id)
        .with_for_update()
    )
    state = {row.node_id: NodeSeqs(row.shop_id, row.acked_seq, row.epoch) for row in rows}
    pending = await conn.execute(
        select(pending_seqs.c.node_id, pending_seqs.c.seq).where(pending_seqs.c.node_id.in_(ids))
    )
    for row in pending:
        state[row.node_id].pending.add(row.seq)
    return state


async def commit_seqs(conn: AsyncConnection, state: Mapping[str, NodeSeqs], seen: Iterable[str]) -> dict[str, int]:
    """Fold each node's added seqs into acked_seq/pending, mark `seen` nodes as seen now; returns node -> acked."""
    acked: dict[str, int] = {}
    new_pending: list[dict[str, object]] = []
    moved: list[dict[str, object]] = []
    restarted = [node_id for node_id, seqs in state.items() if seqs.restarted]
    if restarted:  # a later epoch: the earlier epoch's pending seqs mean nothing any more
        await conn.execute(delete(pending_seqs).where(pending_seqs.c.node_id.in_(restarted)))
    epochs = [{"b_node": node_id, "b_epoch": seqs.epoch} for node_id, seqs in state.items() if seqs.epoch_changed]
    if epochs:
        await conn.execute(
            update(nodes).where(nodes.c.node_id == bindparam("b_node")).values(epoch=bindparam("b_epoch")), epochs
        )
    for node_id, seqs in state.items():
        if not seqs.added:
            acked[node_id] = seqs.acked
            if seqs.restarted:
                moved.append({"b_node": node_id, "b_acked": seqs.acked})
            continue
        new_acked, remaining = advance(seqs.acked, seqs.pending | seqs.added)
        acked[node_id] = new_acked
        new_pending.extend({"node_id": node_id, "seq": seq} for seq in remaining - seqs.pending)
        if new_acked != seqs.acked or seqs.restarted:
            moved.append({"b_node": node_id, "b_acked": new_acked})
    if new_pending:
        await conn.execute(pg_insert(pending_seqs).on_conflict_do_nothing(), new_pending)
    if moved:
        await conn.execute(
            delete(pending_seqs).where(
                pending_seqs.c.node_id == bindparam("b_node"), pending_seqs.c.seq <= bindparam("b_acked")
            ),
            moved,
        )
        await conn.execute(
            update(nodes).where(nodes.c.node_id == bindparam("b_node")).values(acked_seq=bindparam("b_acked")),
            moved,
        )
    seen_ids = sorted(set(seen))
    if seen_ids:
        await conn.execute(update(nodes).where(nodes.c.node_id.in_(seen_ids)).values(last_seen=func.now()))
    return acked
