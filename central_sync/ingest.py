"""Ingest: MQTT shared subscription -> validate -> one PostgreSQL transaction per batch -> acks.

Messages are gathered into batches (up to `batch_max_messages`, waiting at most `batch_max_wait_ms` after the
first). Each batch is classified (central_sync.inbound), written in ONE transaction (central_sync.db.writer), and
only after the commit are the nodes acked (`Ack` with their highest contiguous seq) and the messages PUBACKed to
the broker. A database outage stalls the batch and retries it with back-off; a row the database refuses for its
data (not for an outage) is isolated by writing the batch one message at a time, and recorded as a reject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from central_sync.config import CentralConfig
from central_sync.db.engine import translate
from central_sync.db.writer import BatchOutcome, write_batch
from central_sync.errors import CentralError, DatabaseError
from central_sync.inbound import Accepted, Classified, RawMessage, Rejected, classify
from central_sync.mqtt import MqttLink
from shared_models.messages import Ack
from shared_models.topics import ack_topic, central_subscription

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestStats:
    """Counters shown by /api/v1/health."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    batches: int = 0
    acks_sent: int = 0
    db_errors: int = 0
    last_batch_size: int = 0
    last_batch_ms: float = 0.0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON-ready values."""
        return asdict(self)


class Ingest:
    """One replica's ingest loop; `on_outbox` is called after a commit that added Kafka outbox rows."""

    def __init__(
        self, config: CentralConfig, engine: AsyncEngine, *, on_outbox: Callable[[], None] | None = None
    ) -> None:
        self._config = config
        self._engine = engine
        self._on_outbox = on_outbox
        self._queue: asyncio.Queue[RawMessage] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.stats = IngestStats()
        self.link = MqttLink(config.mqtt, self._queue.put_nowait, subscription=central_subscription())

    async def start(self) -> None:
        """Connect to the broker (in the background) and start the batch loop."""
        self.link.start()
        self._task = asyncio.create_task(self._run(), name="central-ingest")

    async def stop(self) -> None:
        """Stop the loop; messages not yet committed stay un-PUBACKed, so the broker delivers them again."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.link.stop()

    @property
    def backlog(self) -> int:
        """Messages received and not yet written."""
        return self._queue.qsize()

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            try:
                await self.handle(batch)
            except Exception:  # a bug must not stop ingest; unacked messages come back on the next session
                _LOGGER.exception("ingest batch of %d failed unexpectedly", len(batch))
                self.stats.last_error = "unexpected error; see the log"

    async def _collect(self) -> list[RawMessage]:
        """The next batch: block for one message, then take what arrives within the batch window."""
        batch = [await self._queue.get()]
        limit = self._config.ingest.batch_max_messages
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.ingest.batch_max_wait_ms / 1000
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    batch.append(await self._queue.get())
            except TimeoutError:
                break
        return batch

    async def handle(self, batch: Sequence[RawMessage]) -> BatchOutcome:
        """Classify, write (retrying outages), then ack the nodes and PUBACK the broker."""
        started = time.perf_counter()
        self.stats.received += len(batch)
        items = [classify(message) for message in batch]
        outcome = await self._write_isolating(items)
        self._publish_acks(outcome)
        for message in batch:
            self.link.ack(message)
        for reject in outcome.rejects:
            _LOGGER.warning("rejected a message on %s: %s", reject.raw.topic, reject.reason)
        stats = self.stats
        stats.batches += 1
        stats.accepted += outcome.accepted
        stats.duplicates += outcome.duplicates
        stats.rejected += outcome.rejected
        stats.skipped += outcome.skipped
        stats.last_batch_size = len(batch)
        stats.last_batch_ms = round((time.perf_counter() - started) * 1000, 2)
        if outcome.outbox and self._on_outbox is not None:
            self._on_outbox()
        return outcome

    async def _write(self, items: Sequence[Classified]) -> BatchOutcome:
        try:
            async with self._engine.begin() as conn:
                return await write_batch(conn, items, self._config.topic_for)
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            raise translate(err, "writing a batch") from err

    async def _write_retrying(self, items: Sequence[Classified]) -> BatchOutcome:
        """Write, retrying outages with back-off until they pass; data faults are raised to the caller."""
        delay = self._config.ingest.retry_initial_seconds
        while True:
            try:
                return await self._write(items)
            except DatabaseError as err:
                self.stats.db_errors += 1
                self.stats.last_error = err.message
                if not err.retriable:
                    raise
                _LOGGER.warning("database unavailable (%s); retrying in %.1f s", err.message, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.ingest.retry_max_seconds)

    async def _write_isolating(self, items: list[Classified]) -> BatchOutcome:
        """Write the batch; when the data is refused, write message by message so only the culprit is rejected."""
        try:
            return await self._write_retrying(items)
        except DatabaseError as err:
            if len(items) == 1:
                return await self._write_reject(_as_reject(items[0], err))
            _LOGGER.warning("a batch of %d was refused (%s); writing one by one", len(items), err.message)
        total = BatchOutcome()
        for item in items:
            outcome = await self._write_isolating([item])
            _merge(total, outcome)
        return total

    async def _write_reject(self, reject: Rejected) -> BatchOutcome:
        try:
            return await self._write_retrying([reject])
        except DatabaseError as err:  # even the reject row was refused: log it, never loop on it
            _LOGGER.error("dropping a message on %s that the database refuses: %s", reject.raw.topic, err.message)
            return BatchOutcome(rejected=1)

    def _publish_acks(self, outcome: BatchOutcome) -> None:
        now = datetime.now(UTC)
        for node_id, (shop_id, seq, epoch) in outcome.acks.items():
            ack = Ack(node_id=node_id, seq=seq, epoch=epoch, acked_at=now)
            try:
                self.link.publish(ack_topic(shop_id, node_id), ack.model_dump_json().encode(), qos=1)
            except (CentralError, ValueError) as err:  # ValueError: a segment not valid in a topic
                _LOGGER.warning("could not ack %s/%s: %s", shop_id, node_id, err)
                continue
            self.stats.acks_sent += 1


def _as_reject(item: Classified, err: DatabaseError) -> Rejected:
    """A message the database refused, as a reject that is acked past (it would be refused every time)."""
    reason = f"database refused it: {err.message}"[:500]
    if isinstance(item, Accepted):
        env = item.envelope
        return Rejected(item.raw, reason, node_id=env.node_id, shop_id=env.shop_id, seq=env.seq, skip=True)
    if isinstance(item, Rejected):
        return Rejected(item.raw, reason, node_id=item.node_id, shop_id=item.shop_id, seq=item.seq, skip=item.skip)
    return Rejected(item.raw, reason, node_id=item.status.node_id, shop_id=item.status.shop_id)


def _merge(total: BatchOutcome, part: BatchOutcome) -> None:
    total.acks.update(part.acks)
    total.accepted += part.accepted
    total.duplicates += part.duplicates
    total.rejected += part.rejected
    total.skipped += part.skipped
    total.outbox += part.outbox
    total.rejects.extend(part.rejects)
