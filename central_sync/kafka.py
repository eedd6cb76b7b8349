"""Kafka outbox relay: kafka_outbox rows -> ocr.completed / ocr.failed / ocr.metrics, then marked sent.

aiokafka with acks=all and NO idempotence or transactions (tansu, the test broker, supports neither), so delivery
is at least once: a crash between Kafka's ack and the `sent_at` update sends those rows again, and consumers
deduplicate by key (job id). Rows are claimed with `FOR UPDATE SKIP LOCKED`, so replicas relay disjoint rows.
Kafka being down never touches ingest: rows wait in PostgreSQL and the relay retries with back-off, in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
from sqlalchemy import Text, cast, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from central_sync.config import KafkaConfig
from central_sync.db.engine import translate
from central_sync.db.models import kafka_outbox
from central_sync.errors import DatabaseError, KafkaUnavailableError

_LOGGER = logging.getLogger(__name__)

#: Errors that belong to ONE record (too large, bad topic, forbidden): retrying cannot help, so the row is
#: marked sent and logged instead of blocking every row behind it.
RECORD_FAULTS = (MessageSizeTooLargeError, RecordTooLargeError, InvalidTopicError, TopicAuthorizationFailedError)
#: Producer batches of this many bytes per partition: results are 1-10 kB, so the default 16 kB is too small.
MAX_BATCH_BYTES = 512 * 1024
#: Sent rows older than the retention are deleted at most this often.
PRUNE_INTERVAL_SECONDS = 600.0


class KafkaRelay:
    """Relays the outbox until stopped; `wake()` after a commit that added rows."""

    def __init__(self, config: KafkaConfig, engine: AsyncEngine, *, client_id: str = "central-sync") -> None:
        self._config = config
        self._engine = engine
        self._client_id = client_id
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self.connected = False
        self.sent = 0
        self.dropped = 0
        self.failures = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        """New outbox rows were committed: relay now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Start relaying in the background."""
        self._task = asyncio.create_task(self._run(), name="central-kafka-relay")

    async def stop(self) -> None:
        """Stop relaying; unsent rows stay in the outbox."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_producer()

    async def _run(self) -> None:
        delay = self._config.retry_initial_seconds
        while True:
            try:
                await self._ensure_producer()
                count = await self.relay_once()
                delay = self._config.retry_initial_seconds
                if count < self._config.batch_size:
                    await self._prune_if_due()
                    await self._idle()
            except (KafkaUnavailableError, DatabaseError) as err:
                self.failures += 1
                self.last_error = err.message
                _LOGGER.warning("Kafka relay paused (%s); retrying in %.1f s", err.message, delay)
                if isinstance(err, KafkaUnavailableError):
                    await self._close_producer()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.retry_max_seconds)
            except Exception:  # a bug must not end the relay: log it, drop the producer, back off
                self.failures += 1
                self.last_error = "unexpected error; see the log"
                _LOGGER.exception("Kafka relay round failed unexpectedly")
                await self._close_producer()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.retry_max_seconds)

    async def _idle(self) -> None:
        try:
            async with asyncio.timeout(self._config.poll_interval_seconds):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    async def _ensure_producer(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self._config.bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=False,
            request_timeout_ms=self._config.request_timeout_ms,
            max_batch_size=MAX_BATCH_BYTES,
            linger_ms=5,
        )
        try:
            await producer.start()
        except (KafkaError, OSError) as err:
            await producer.stop()
            raise KafkaUnavailableError(f"cannot connect to Kafka at {self._config.bootstrap}: {err!r}") from err
        if self._config.create_topics:
            try:
                await self._create_topics()
            except (KafkaError, OSError) as err:  # e.g. not authorised: the topics may exist or be auto-created
                _LOGGER.warning("could not create the Kafka topics: %r", err)
        self._producer = producer
        self.connected = True
        self.last_error = None
        _LOGGER.info("Kafka relay connected to %s", self._config.bootstrap)

    async def _create_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._config.bootstrap, client_id=self._client_id)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = {self._config.topic_completed, self._config.topic_failed, self._config.topic_metrics}
            missing = [
                NewTopic(name, self._config.partitions, self._config.replication_factor)
                for name in sorted(wanted - existing)
            ]
            if missing:
                await admin.create_topics(missing)
                _LOGGER.info("created Kafka topics %s", ", ".join(t.name for t in missing))
        finally:
            await admin.close()

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        self.connected = False
        if producer is not None:
            try:
                await producer.stop()
            except (KafkaError, OSError) as err:
                _LOGGER.debug("stopping the Kafka producer: %s", err)

    async def relay_once(self) -> int:
        """Send one batch of unsent rows and mark them sent; returns how many were relayed."""
        try:
            async with self._engine.begin() as conn:
                rows = (
                    await conn.execute(
                        select(
                            kafka_outbox.c.id,
                            kafka_outbox.c.topic,
                            kafka_outbox.c.key,
                            # The JSON text straight from PostgreSQL: no decode + re-encode in Python.
                            cast(kafka_outbox.c.value, Text).label("value"),
                        )
                        .where(kafka_outbox.c.sent_at.is_(None))
                        .order_by(kafka_outbox.c.id)
                        .limit(self._config.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                if not rows:
                    return 0
                await self._send(rows)
                await conn.execute(
                    update(kafka_outbox)
                    .where(kafka_outbox.c.id.in_([row.id for row in rows]))
                    .values(sent_at=func.now())
                )
        except (SQLAlchemyError, OSError) as err:
            raise translate(err, "relaying the Kafka outbox") from err
        self.sent += len(rows)
        return len(rows)

    async def _send(self, rows: Sequence[Any]) -> None:
        producer = self._producer
        if producer is None:
            raise KafkaUnavailableError("no Kafka producer")
        pending: list[tuple[Any, asyncio.Future[Any]]] = []
        try:
            for row in rows:
                try:
                    pending.append((row, await producer.send(row.topic, row.value.encode(), key=row.key.encode())))
                except RECORD_FAULTS as err:
                    self._drop(row, err)
            async with asyncio.timeout(self._config.request_timeout_ms / 1000 + 5):
                results = await asyncio.gather(*(future for _, future in pending), return_exceptions=True)
        except (KafkaError, OSError, TimeoutError) as err:
            raise KafkaUnavailableError(f"Kafka send failed: {err!r}") from err
        for (row, _), result in zip(pending, results, strict=True):
            if isinstance(result, RECORD_FAULTS):
                self._drop(row, result)
            elif isinstance(result, BaseException):
                raise KafkaUnavailableError(f"Kafka send failed: {result!r}") from result

    def _drop(self, row: Any, err: BaseException) -> None:
        self.dropped += 1
        _LOGGER.error(
            "Kafka refuses outbox row %s (topic %s, key %s): %r; skipping it", row.id, row.topic, row.key, err
        )

    async def _prune_if_due(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_prune < PRUNE_INTERVAL_SECONDS:
            return
        self._last_prune = now
        cutoff = func.now() - timedelta(hours=self._config.retention_hours)
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(delete(kafka_outbox).where(kafka_outbox.c.sent_at < cutoff))
        except (SQLAlchemyError, OSError) as err:
            raise translate(err, "pruning the Kafka outbox") from err
        if result.rowcount:
            _LOGGER.info("pruned %d sent outbox rows", result.rowcount)
