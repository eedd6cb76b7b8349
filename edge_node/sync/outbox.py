"""The outbox publisher: outbox rows -> MQTT envelopes, in seq order, deleted only after central's ack.

One task drains the outbox: it reads rows after the highest seq sent (Database.run), publishes them as
`Envelope`s on `up_topic(shop, node, kind)` through the MQTT link while fewer than `max_in_flight` rows await
central's ack, and sends a row again when no ack covers it within `ack_timeout_seconds`. An `Ack(seq)` from
central on `ack_topic(shop, node)` deletes every row up to seq; the broker's PUBACK alone deletes nothing.
Another task queues a metrics snapshot every `metrics_interval_seconds` and refreshes the retained status.

A row that can never be sent as it is (unknown kind, a body that is not a JSON object, over central's size
limit) is not deleted: a missing seq would stall central's contiguous ack for good. Its seq goes out as a small
`errors` envelope describing the row instead (`_placeholder`); that body is no job event, so central records it
as a skipped reject (central_sync.inbound: trusted but permanently bad) and acks past it like any other seq.

Cost control (sync must never slow OCR): envelopes are built and handed to paho on a thread of their own, which
like paho's network thread runs at a low CPU priority (see `mqtt.SYNC_THREAD_NICE`); acks, which central sends
per message, are parsed on the network thread and only the highest is handed to the event loop; the window is
refilled in batches, so a draining backlog costs one read and one hand-off per batch, not per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from edge_node import __version__
from edge_node.config import SyncConfig
from edge_node.errors import ServiceUnavailableError
from edge_node.store import outbox as outbox_store
from edge_node.store.db import Database
from edge_node.store.outbox import OutboxRow
from edge_node.sync.mqtt import MqttLink, lower_thread_priority
from shared_models.messages import MAX_MESSAGE_BYTES, SCHEMA_VERSION, Ack, Envelope, NodeStatus
from shared_models.topics import UpKind, ack_topic, up_topic

_LOGGER = logging.getLogger(__name__)

#: With nothing else waking it (a job listener, an ack), the drain task looks for new rows this often;
#: rows written outside the job queue (e.g. rejected uploads) are picked up within this time.
POLL_SECONDS = 2.0
#: Rows read and published per step; bounds one executor hand-off (and the event loop's share of the work).
BATCH_ROWS = 200
#: After a storage error the drain task waits this long before trying again.
STORAGE_RETRY_SECONDS = 5.0
#: The window is refilled when a 1/REFILL_FRACTION of it is free (a lone new row still goes out at once).
REFILL_FRACTION = 4
#: Job events after which a new outbox row exists.
OUTBOX_EVENTS = frozenset({"job_completed", "job_failed"})
#: The body key of the stand-in for an unsendable row (no job_id/status: central keeps it as a reject, not a job).
UNSENDABLE_KEY = "unsendable_outbox_row"
#: Characters of a row's kind and of the reason kept in that stand-in (it must stay small whatever the row was).
UNSENDABLE_TEXT_CHARS = 300


def client_id(node_id: str) -> str:
    """A stable MQTT client id per node, so the broker resumes the node's session."""
    return f"edge-{node_id}"


class OutboxPublisher:
    """Publishes the outbox over an `MqttLink` and applies central's acks; see the module docstring."""

    def __init__(self, settings: SyncConfig, node_id: str, shop_id: str, db: Database, *,
                 link: MqttLink | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self.node_id = node_id
        self.shop_id = shop_id
        self._db = db
        self._clock = clock
        self._status_topic = up_topic(shop_id, node_id, UpKind.STATUS)
        #: Set by the app when models are managed: language -> serving engine/bundle, in the retained status.
        self.model_versions: Callable[[], dict[str, str]] | None = None
        self.link = link or MqttLink(settings, client_id(node_id), will_topic=self._status_topic,
                                     will_payload=self._status("offline"))
        self.link.subscribe(ack_topic(shop_id, node_id), self._on_ack_message, on_network_thread=True)
        self.link.on_connect(self._on_connect)
        self.link.on_disconnect(self._on_disconnect)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqtt-publish",
                                            initializer=lower_thread_priority)
        # Acks arrive on the network thread; the highest waiting one is applied on the loop in one go.
        self._ack_lock = threading.Lock()
        self._ack_waiting: int | None = None
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # seq -> monotonic deadline of central's ack; insertion order is seq order.
        self._in_flight: dict[int, float] = {}
        self._sent_seq = 0  # highest seq published by this process
        self._acked_seq = 0  # highest seq central acknowledged
        self._deleted_seq = 0  # highest seq deleted from the outbox
        self._last_summary: dict[str, Any] | None = None
        self._stopped = False
        # Refill the window only once this many slots are free: one read and one hand-off per batch, not per ack.
        self._refill_rows = max(1, settings.max_in_flight // REFILL_FRACTION)
        self._status_due = False  # publish the retained `online` status at the next drain step
        self.connected = False
        self.backlog: int | None = None
        self._last_ack_time: float | None = None
        self.epoch: str | None = None  # read from the database at start
        self.published = 0
        self.resent = 0

    # ---- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the MQTT link and the drain and metrics tasks; returns at once (the broker may be down)."""
        self.backlog = await self._db.run(outbox_store.backlog)
        self.epoch = await self._db.run(outbox_store.epoch)
        self.link.start(asyncio.get_running_loop())
        self._tasks = [
            asyncio.create_task(self._drain_forever(), name="sync-drain"),
            asyncio.create_task(self._metrics_forever(), name="sync-metrics"),
        ]

    async def stop(self) -> None:
        """Stop the tasks, publish the retained `offline` status, disconnect. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.link.stop, (self._status_topic, self._status("offline")))
        await loop.run_in_executor(None, self._executor.shutdown)

    def wake(self) -> None:
        """New rows may be waiting: drain now instead of at the next poll."""
        self._wakeup.set()

    def job_event(self, event: str, _job: object, _data: dict[str, Any]) -> None:
        """A `JobQueue` listener: a finished job has just written an outbox row."""
        if event in OUTBOX_EVENTS:
            self._wakeup.set()

    @property
    def last_ack_at(self) -> str | None:
        """When central's last ack arrived (ISO 8601 UTC), or None."""
        if self._last_ack_time is None:
            return None
        return datetime.fromtimestamp(self._last_ack_time, UTC).isoformat(timespec="milliseconds")

    @property
    def in_flight(self) -> int:
        """Rows published and not yet acknowledged by central."""
        return len(self._in_flight)

    def health(self) -> dict[str, Any]:
        """The `sync` block of /health (backlog as last counted here)."""
        return {"enabled": True, "connected": self.connected, "backlog": self.backlog,
                "last_ack_at": self.last_ack_at, "in_flight": self.in_flight}

    # ---- link events (on the event loop) ---------------------------------------------------------------------
    def _on_connect(self, _session_present: bool) -> None:
        self.connected = True
        self._status_due = True
        self._wakeup.set()

    def _on_disconnect(self, reason: str) -> None:
        self.connected = False
        _LOGGER.info("sync paused (%s); %d rows in flight", reason, len(self._in_flight))

    def _on_ack_message(self, _topic: str, payload: bytes) -> None:
        """On the network thread: central acks every message; hand the loop only the highest seq, once."""
        try:
            ack = Ack.model_validate_json(payload)
        except ValidationError as err:
            _LOGGER.warning("ignoring a malformed ack: %s", err)
            return
        if ack.node_id != self.node_id:
            _LOGGER.warning("ignoring an ack for node %s", ack.node_id)
            return
        if ack.epoch is not None and ack.epoch != self.epoch:
            # An ack of this node's previous database (queued in the session before it was replaced): its seqs
            # are not ours, and applying it would delete rows central never got.
            _LOGGER.warning("ignoring an ack of outbox epoch %s (ours is %s)", ack.epoch, self.epoch)
            return
        with self._ack_lock:
            scheduled = self._ack_waiting is not None
            self._ack_waiting = max(ack.seq, self._ack_waiting or 0)
        if not scheduled:
            self.link.hand_off(self._apply_ack)

    def _apply_ack(self) -> None:
        """On the loop: every row up to the highest ack received is done (deleted by the next drain step)."""
        with self._ack_lock:
            seq, self._ack_waiting = self._ack_waiting or 0, None
        if seq <= self._acked_seq:
            return
        if seq > self._sent_seq:
            # Rows this process has not sent yet: an ack queued from before a restart (they are sent again and
            # acked again), or central remembers a higher seq than this node's database ever had.
            _LOGGER.warning("ignoring an ack for seq %d: only %d sent so far", seq, self._sent_seq)
            return
        self._acked_seq = seq
        self._last_ack_time = time.time()  # formatted only when asked: acks come by the thousand
        while self._in_flight and next(iter(self._in_flight)) <= seq:  # seq order: acked rows lead
            del self._in_flight[next(iter(self._in_flight))]
        if self._settings.max_in_flight - len(self._in_flight) >= self._refill_rows:
            self._wakeup.set()

    # ---- draining ---------------------------------------------------------------------------------------------
    async def _drain_forever(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                await self._drain_step()
            except ServiceUnavailableError:
                _LOGGER.exception("sync cannot read the outbox")
                await asyncio.sleep(STORAGE_RETRY_SECONDS)
            except Exception:  # a bug here must not end sync for good
                _LOGGER.exception("sync drain step failed")
                await asyncio.sleep(STORAGE_RETRY_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._next_wait())

    async def _drain_step(self) -> None:
        """Delete what central acked, resend what timed out, send new rows into the free window."""
        if self._deleted_seq < self._acked_seq:
            acked = self._acked_seq
            deleted = await self._db.run(outbox_store.delete_through, acked)
            self._deleted_seq = acked
            self.backlog = max(0, (self.backlog or 0) - deleted)
        if not self.connected:
            return
        if self._status_due:
            self._status_due = False
            self.backlog = await self._db.run(outbox_store.backlog)
            payload = self._status("online")
            await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: self.link.publish(self._status_topic, payload, retain=True))
        now = self._clock()
        overdue = [seq for seq, deadline in self._in_flight.items() if deadline <= now][:BATCH_ROWS]
        if overdue:
            rows = await self._db.run(outbox_store.take_for_resend, overdue)
            for seq in set(overdue) - {row.seq for row in rows}:
                self._in_flight.pop(seq, None)  # deleted meanwhile: acked
            self.resent += await self._send(rows)
            if len(overdue) == BATCH_ROWS:
                self._wakeup.set()
        room = self._settings.max_in_flight - len(self._in_flight)
        if room < self._refill_rows:
            return
        limit = min(room, BATCH_ROWS)
        rows = await self._db.run(outbox_store.read_after, self._sent_seq, limit)
        self.published += await self._send(rows)
        if len(rows) == limit:
            self._wakeup.set()

    async def _send(self, rows: list[OutboxRow]) -> int:
        """Publish rows off the loop, tracked as in flight from before the first one leaves (central's ack may
        come back before the publish call returns). Returns how many paho accepted."""
        if not rows:
            return 0
        deadline = self._clock() + self._settings.ack_timeout_seconds
        for row in rows:
            if row.seq > self._acked_seq:
                self._in_flight[row.seq] = deadline
        self._sent_seq = max(self._sent_seq, rows[-1].seq)
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._executor, self._publish_rows, rows)
        # A row paho refused (its queue is full) stays in flight: it goes again after the ack timeout.
        poison = [seq for seq, outcome in results if outcome is None]
        for seq in poison:
            self._in_flight.pop(seq, None)
        if poison:
            await self._db.run(outbox_store.delete_seqs, poison)
        return sum(1 for _, outcome in results if outcome)

    def _publish_rows(self, rows: list[OutboxRow]) -> list[tuple[int, bool | None]]:
        """On the publish thread: envelope and publish each row (an unsendable one as its stand-in, see the
        module docstring); None marks a row of which not even the stand-in can be built."""
        results: list[tuple[int, bool | None]] = []
        for row in rows:
            try:
                kind, payload = self._envelope(row)
            except (ValueError, ValidationError) as err:
                _LOGGER.error("outbox row %d (%s) cannot be sent; sending a stand-in so central acks past it: %s",
                              row.seq, row.kind, err)
                try:
                    kind, payload = self._placeholder(row, str(err))
                except (ValueError, ValidationError) as again:
                    _LOGGER.error("outbox row %d: not even a stand-in can be sent; dropped: %s", row.seq, again)
                    results.append((row.seq, None))
                    continue
            results.append((row.seq, self.link.publish(up_topic(self.shop_id, self.node_id, kind), payload)))
        return results

    def _envelope(self, row: OutboxRow) -> tuple[UpKind, bytes]:
        kind = UpKind(row.kind)
        if kind is UpKind.STATUS:
            raise ValueError("status is not an outbox kind")
        body = json.loads(row.payload)
        envelope = Envelope(schema_version=SCHEMA_VERSION, node_id=self.node_id, shop_id=self.shop_id, seq=row.seq,
                            epoch=self.epoch, kind=kind, sent_at=datetime.now(UTC), body=body)
        payload = envelope.model_dump_json().encode()
        if len(payload) > MAX_MESSAGE_BYTES:
            raise ValueError(f"{len(payload)} bytes is over central's limit of {MAX_MESSAGE_BYTES}")
        return kind, payload

    def _placeholder(self, row: OutboxRow, reason: str) -> tuple[UpKind, bytes]:
        """A small `errors` envelope with the row's seq that says what was not sent and why."""
        described: dict[str, Any] = {
            "seq": row.seq, "kind": row.kind[:UNSENDABLE_TEXT_CHARS], "payload_bytes": len(row.payload),
            "created_at": row.created_at, "reason": reason[:UNSENDABLE_TEXT_CHARS],
        }
        job_id = _job_id_of(row.payload)
        if job_id is not None:
            described["job_id"] = job_id
        envelope = Envelope(schema_version=SCHEMA_VERSION, node_id=self.node_id, shop_id=self.shop_id, seq=row.seq,
                            epoch=self.epoch, kind=UpKind.ERRORS, sent_at=datetime.now(UTC),
                            body={UNSENDABLE_KEY: described})
        return UpKind.ERRORS, envelope.model_dump_json().encode()

    def _next_wait(self) -> float:
        if not self.connected or not self._in_flight:
            return POLL_SECONDS
        first_deadline = min(self._in_flight.values())
        return max(0.0, min(POLL_SECONDS, first_deadline - self._clock()))

    # ---- status and metrics ------------------------------------------------------------------------------------
    def _status(self, state: str) -> bytes:
        at = datetime.now(UTC) if state == "online" else None
        backlog = self.backlog if state == "online" else None
        models = self.model_versions() if self.model_versions is not None else {}
        return NodeStatus(node_id=self.node_id, shop_id=self.shop_id, state=state, version=__version__,
                          backlog=backlog, at=at, model_versions=models).model_dump_json().encode()

    def refresh_status(self) -> None:
        """Something in the status changed (e.g. the serving model): publish it again at the next drain step."""
        self._status_due = True
        self._wakeup.set()

    async def _metrics_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.metrics_interval_seconds)
            try:
                await self.queue_metrics()
            except ServiceUnavailableError:
                _LOGGER.exception("cannot queue a metrics snapshot")

    async def queue_metrics(self) -> int | None:
        """Queue a metrics snapshot (skipped when nothing changed since the last); returns its seq."""
        seq, self._last_summary = await self._db.run(
            outbox_store.append_metrics, self.node_id, self.shop_id, self._last_summary
        )
        self._status_due = True  # refresh the backlog in the retained status
        self._wakeup.set()
        return seq


def _job_id_of(payload: str) -> str | None:
    """The job id of a row's JSON payload, when it has a plausible one (for the stand-in of an unsendable row)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    job_id = doc.get("job_id") if isinstance(doc, dict) else None
    return job_id if isinstance(job_id, str) and 0 < len(job_id) <= 128 else None
