"""Chaos test of the whole sync path with real processes only (DESIGN §2 steps 5-7, §5).

A real `edge-node serve` accepts 2,000 jobs while its MQTT broker (our own Mosquitto, persistence on) is down:
1,800 tiny distinct labels read as `type=barcode` (decode + barcode scan, no OCR) that complete, and 200 blank
images that fail with LOW_QUALITY. Then the broker comes up and the node's outbox drains through a real
`central-sync serve` (own PostgreSQL database) and its Kafka relay (our own tansu). During the drain:

1. central is SIGKILLed once and restarted (its persistent session brings back what it had not committed);
2. the broker is restarted once (SIGTERM: it saves sessions and queued messages);
3. tansu is stopped for a while and restarted; ingest into PostgreSQL must go on meanwhile.

At the end PostgreSQL has exactly one row per job of the node, the node's outbox is empty, and every job id is a
key on ocr.completed (completed jobs) or ocr.failed (failed jobs); duplicates on Kafka are counted and reported
(delivery is at least once), none may be missing.

tansu keeps its log in memory only, so its restart empties the topics. A reader collects keys continuously; just
before tansu stops, central is frozen (SIGSTOP) for the moment the reader needs to read everything tansu holds,
so nothing central had relayed is lost with tansu's memory (a real Kafka keeps its log: there, no freeze would be
needed). After the restart the reader starts again from offset 0 of the recreated topics.

The timings are logged; with SYNC_CHAOS_REPORT=PATH they are also written there as JSON (bench/sync_figures.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench.node_process import SHOP, EdgeProcess
from tests.integration.sync_cluster import (
    CentralProcess,
    KafkaKeys,
    blank_image,
    create_topics,
    fresh_database,
    kill,
    label_image,
    node_counts,
    submit,
    wait_until,
)
from tests.services import Mosquitto, Tansu, plain_dsn

pytestmark = pytest.mark.integration

_LOGGER = logging.getLogger(__name__)

NODE = "node-chaos"
JOBS = 2000
#: Every FAIL_EVERY-th job is a blank image (LOW_QUALITY): the failed path goes end to end too.
FAIL_EVERY = 10
#: Jobs in PostgreSQL at which each fault is injected (shares of JOBS): all three land mid-drain.
CENTRAL_KILL_AT, BROKER_RESTART_AT, KAFKA_STOP_AT = 300, 900, 1400
CENTRAL_DOWN_SECONDS = 2.0
BROKER_DOWN_SECONDS = 1.0
KAFKA_DOWN_SECONDS = 5.0
#: The node resends rows central has not acked after this long. Mosquitto 2.0 does not restore shared
#: subscriptions from its persistence file: after a broker restart, what the node publishes before central has
#: reconnected and subscribed again is dropped by the broker and goes again after this timeout.
ACK_TIMEOUT_SECONDS = 5
#: Upper bounds of the phases (the whole test normally takes 1-2 minutes on 2 cores).
ACCEPT_SECONDS = 120.0
DRAIN_SECONDS = 120.0


def node_env(broker: Mosquitto) -> dict[str, str]:
    """The node: sync on to our broker, no cache (every upload is a job), no rate or queue limits in the way."""
    return {
        "EDGE_NODE_ID": NODE,
        "EDGE_SHOP_ID": SHOP,
        "EDGE_SYNC__ENABLED": "true",
        "EDGE_SYNC__BROKER_URL": broker.url,
        "EDGE_SYNC__ACK_TIMEOUT_SECONDS": str(ACK_TIMEOUT_SECONDS),
        "EDGE_SYNC__RECONNECT_MIN_SECONDS": "0.5",
        "EDGE_SYNC__RECONNECT_MAX_SECONDS": "2",
        "EDGE_SYNC__SESSION_EXPIRY_SECONDS": "600",
        "EDGE_SYNC__METRICS_INTERVAL_SECONDS": "3600",  # job rows only: the outbox can be checked to be empty
        "EDGE_CACHE__ENABLED": "false",
        "EDGE_RATE_LIMIT_USER_PER_MIN": "0",
        "EDGE_RATE_LIMIT_SHOP_PER_HOUR": "0",
        "EDGE_WORKER__SOFT_QUEUE_LIMIT": "100000",
        "EDGE_WORKER__HARD_QUEUE_LIMIT": "100000",
    }


class Chaos:
    """The running system and what the test observed."""

    def __init__(self, broker: Mosquitto, tansu: Tansu, central: CentralProcess, node: EdgeProcess,
                 db_url: str) -> None:
        self.broker, self.tansu, self.central, self.node = broker, tansu, central, node
        self.dsn = plain_dsn(db_url)
        self.keys = KafkaKeys()
        self.timings: dict[str, float] = {}
        self.marks: dict[str, int] = {}
        self.progress: list[tuple[float, int]] = []  # (seconds since the broker came up, jobs in PostgreSQL)
        self._drain_started = 0.0
        self._conn: asyncpg.Connection | None = None

    async def pg_jobs(self) -> int:
        assert self._conn is not None
        return int(await self._conn.fetchval("SELECT count(*) FROM ocr_processing_jobs WHERE node_id = $1", NODE))

    async def reached(self, jobs: int) -> bool:
        count = await self.pg_jobs()
        now = round(time.monotonic() - self._drain_started, 1)
        if self._drain_started and (not self.progress or now - self.progress[-1][0] >= 1.0):
            self.progress.append((now, count))
        return count >= jobs

    async def mark(self, name: str) -> None:
        """Note the jobs in PostgreSQL and the time when a fault is injected."""
        self.marks[f"{name}_at_jobs"] = await self.pg_jobs()
        self.timings[f"{name}_at_s"] = time.monotonic() - self._drain_started

    async def run(self) -> dict[str, Any]:
        self._conn = await asyncpg.connect(self.dsn)
        try:
            return await self._run()
        finally:
            await self.keys.detach()
            await self._conn.close()

    async def _run(self) -> dict[str, Any]:
        await create_topics(self.tansu.bootstrap)
        await asyncio.to_thread(self.central.start)
        await asyncio.to_thread(self.central.wait_subscribed)  # the broker keeps its session while it is down
        await self.keys.attach(self.tansu.bootstrap)

        # The broker goes down; the node starts and accepts every job offline.
        await asyncio.to_thread(self.broker.stop)
        await asyncio.to_thread(self.node.start)
        images = [blank_image(n) if n % FAIL_EVERY == FAIL_EVERY - 1 else label_image(n) for n in range(JOBS)]
        assert len(set(images)) == JOBS
        started = time.monotonic()
        job_ids = await submit(self.node, images)
        self.timings["accept_2000_s"] = time.monotonic() - started
        await wait_until(self._node_done, ACCEPT_SECONDS, "every job finished on the node")
        self.timings["accept_and_process_s"] = time.monotonic() - started
        statuses, backlog = node_counts(self.node)
        assert backlog == JOBS, f"the outbox holds one row per job while offline, got {backlog}"
        assert await self.pg_jobs() == 0

        # The broker comes up: the backlog drains, with the three faults on the way.
        drain_started = self._drain_started = time.monotonic()
        await asyncio.to_thread(self.broker.start)
        await wait_until(lambda: self.reached(CENTRAL_KILL_AT), DRAIN_SECONDS, f">= {CENTRAL_KILL_AT} jobs")
        await self._kill_central()
        await wait_until(lambda: self.reached(BROKER_RESTART_AT), DRAIN_SECONDS, f">= {BROKER_RESTART_AT} jobs")
        await self._restart_broker()
        await wait_until(lambda: self.reached(KAFKA_STOP_AT), DRAIN_SECONDS, f">= {KAFKA_STOP_AT} jobs")
        await self._stop_and_restart_kafka()

        await wait_until(lambda: self.reached(JOBS), DRAIN_SECONDS, f"all {JOBS} jobs in PostgreSQL")
        self.timings["drain_to_postgres_s"] = time.monotonic() - drain_started
        await wait_until(self._outbox_empty, DRAIN_SECONDS, "the node's outbox empty")
        self.timings["drain_to_empty_outbox_s"] = time.monotonic() - drain_started
        await wait_until(self._relayed, DRAIN_SECONDS, "every Kafka outbox row sent")
        await wait_until(lambda: self._all_keys(job_ids), DRAIN_SECONDS, "every job id read from Kafka")
        self.timings["drain_to_kafka_s"] = time.monotonic() - drain_started
        return await self._verify(job_ids, statuses)

    async def _node_done(self) -> bool:
        statuses, _backlog = node_counts(self.node)
        return statuses.get("completed", 0) + statuses.get("failed", 0) == JOBS

    async def _outbox_empty(self) -> bool:
        return node_counts(self.node)[1] == 0

    async def _relayed(self) -> bool:
        assert self._conn is not None
        return int(await self._conn.fetchval("SELECT count(*) FROM kafka_outbox WHERE sent_at IS NULL")) == 0

    async def _all_keys(self, job_ids: list[str]) -> bool:
        seen = {key for keys in self.keys.keys.values() for key in keys}
        return seen.issuperset(job_ids) and await self.keys.caught_up()

    async def _kill_central(self) -> None:
        await self.mark("central_killed")
        self.central.kill()
        await asyncio.sleep(CENTRAL_DOWN_SECONDS)
        self.timings["central_restart_s"] = await asyncio.to_thread(self.central.start)

    async def _restart_broker(self) -> None:
        await self.mark("broker_restarted")
        await asyncio.to_thread(self.broker.stop)
        await asyncio.sleep(BROKER_DOWN_SECONDS)
        await asyncio.to_thread(self.broker.start)

    async def _stop_and_restart_kafka(self) -> None:
        # Freeze the only producer, read all tansu holds (its memory dies with it), then stop it.
        self.central.pause()
        try:
            await asyncio.sleep(0.3)
            await wait_until(self.keys.caught_up, 30, "the reader has read everything tansu holds", interval=0.2)
            await self.mark("kafka_stopped")
            await self.keys.detach()
            await asyncio.to_thread(kill, self.tansu)  # SIGTERM waits for the frozen central's connections
        finally:
            self.central.resume()
        # Down for KAFKA_DOWN_SECONDS at least, and until ingest has committed more jobs without Kafka.
        stopped_at = self.marks["kafka_stopped_at_jobs"]
        await asyncio.sleep(KAFKA_DOWN_SECONDS)
        await wait_until(lambda: self.reached(stopped_at + 1), DRAIN_SECONDS, "ingest going on while Kafka is down")
        await self.mark("kafka_restarted")
        await asyncio.to_thread(self.tansu.start)
        await create_topics(self.tansu.bootstrap)
        await self.keys.attach(self.tansu.bootstrap)

    async def _verify(self, job_ids: list[str], statuses: dict[str, int]) -> dict[str, Any]:
        assert self._conn is not None
        rows = await self._conn.fetch("SELECT job_id, status FROM ocr_processing_jobs WHERE node_id = $1", NODE)
        assert len(rows) == JOBS and {r["job_id"] for r in rows} == set(job_ids), "exactly one row per job"
        pg_statuses = Counter(str(r["status"]) for r in rows)
        assert dict(pg_statuses) == statuses, (pg_statuses, statuses)
        assert statuses == {"completed": JOBS - JOBS // FAIL_EVERY, "failed": JOBS // FAIL_EVERY}
        assert await self._conn.fetchval("SELECT count(*) FROM rejects") == 0
        assert await self._conn.fetchval("SELECT acked_seq FROM nodes WHERE node_id = $1", NODE) == JOBS
        assert node_counts(self.node)[1] == 0

        by_status = {status: {r["job_id"] for r in rows if r["status"] == status} for status in pg_statuses}
        completed, failed = (self.keys.keys[topic] for topic in ("ocr.completed", "ocr.failed"))
        assert set(completed) == by_status["completed"], "completed jobs are keys on ocr.completed, none missing"
        assert set(failed) == by_status["failed"], "failed jobs are keys on ocr.failed, none missing"
        duplicates = {topic: len(keys) - len(set(keys)) for topic, keys in self.keys.keys.items()}
        ingest = self.central.health()["ingest"]
        return {
            "jobs": JOBS,
            "completed": statuses["completed"],
            "failed": statuses["failed"],
            "kafka_records": self.keys.counts(),
            "kafka_duplicates": duplicates,
            "kafka_reader_attachments": self.keys.attachments,
            "central_since_restart": {k: ingest[k] for k in ("received", "accepted", "duplicates", "rejected")},
            **{key: round(value, 2) for key, value in self.timings.items()},
            **self.marks,
            "progress": self.progress,
        }


def test_backlog_drains_exactly_once_through_central_kill_broker_restart_and_kafka_outage(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(tmp_path / "pg", "chaos_sync"))
        broker = Mosquitto(tmp_path / "mosquitto").start()
        stack.callback(broker.stop)
        tansu = Tansu(tmp_path / "tansu").start()
        stack.callback(tansu.stop)
        central = CentralProcess(tmp_path / "central", db_url, broker.url, tansu.bootstrap, "central-chaos")
        stack.callback(central.stop)
        node = EdgeProcess(tmp_path / "node", 2, (), **node_env(broker))
        stack.callback(node.kill)
        started = time.monotonic()
        try:
            report = asyncio.run(Chaos(broker, tansu, central, node, db_url).run())
        except BaseException:
            _LOGGER.error("central log:\n%s", central.tail())
            _LOGGER.error("node log:\n%s", node.log.read_text(errors="replace")[-3000:] if node.log.exists() else "")
            raise
        report["total_s"] = round(time.monotonic() - started, 2)
    _LOGGER.info("sync chaos: %s", json.dumps(report))
    if os.environ.get("SYNC_CHAOS_REPORT"):
        Path(os.environ["SYNC_CHAOS_REPORT"]).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    assert report["kafka_reader_attachments"] == 2
    assert report["kafka_restarted_at_jobs"] > report["kafka_stopped_at_jobs"], "ingest went on while Kafka was down"
    faults = [report[f"{name}_at_jobs"] for name in ("central_killed", "broker_restarted", "kafka_stopped")]
    assert 0 < faults[0] < faults[1] < faults[2] < JOBS, "each fault hit the drain midway"
