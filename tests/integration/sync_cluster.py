"""Real processes for the end-to-end sync tests: the central service as a `central-sync serve` process, a Kafka
reader that collects record keys across broker restarts, tiny distinct job images, and node queries.

Every service is our own instance on a free loopback port (tests/services.py); processes are stopped by PID.
Under CI=true a missing service binary fails the test (tests.services.require), it never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from PIL import Image, ImageDraw, ImageFont

from bench.node_process import EdgeProcess
from tests.services import PostgresServer, Tansu, free_port

#: The Kafka topics of central's relay (central_sync.config.KafkaConfig defaults).
JOB_TOPICS = ("ocr.completed", "ocr.failed")
ALL_TOPICS = (*JOB_TOPICS, "ocr.metrics")
#: Partitions of the topics (as central creates them).
PARTITIONS = 3
#: Glyphs drawn on the job images (no look-alikes, so the images read as different things too).
GLYPHS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


async def wait_until(check: Callable[[], Awaitable[bool]], within: float, what: str, interval: float = 0.1) -> float:
    """Poll `check` until true; returns the seconds it took, fails the test after `within` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(interval)
    raise AssertionError(f"not reached within {within} s: {what}")


# ---- central -------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def fresh_database(workdir: Path, prefix: str) -> Iterator[str]:
    """A new database on the machine's PostgreSQL, migrated with `central-sync migrate`; dropped afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = PostgresServer()
    url = server.create_database(prefix)
    try:
        migrate(url, workdir / "migrate.log")
        yield url
    finally:
        server.drop_database(url)


def central_env(db_url: str, mqtt_url: str, kafka: str, client_id: str) -> dict[str, str]:
    """Environment of a central process; short reconnect and retry delays, as the tests restart its services."""
    return {
        **os.environ,
        "CENTRAL_DATABASE_URL": db_url,
        "CENTRAL_DATABASE__MIGRATE_ON_START": "false",
        "CENTRAL_MQTT_URL": mqtt_url,
        "CENTRAL_MQTT__CLIENT_ID": client_id,
        "CENTRAL_MQTT__SESSION_EXPIRY_SECONDS": "600",
        "CENTRAL_MQTT__RECONNECT_MAX_SECONDS": "2",
        "CENTRAL_KAFKA_BOOTSTRAP": kafka,
        "CENTRAL_KAFKA__REQUEST_TIMEOUT_MS": "3000",
        "CENTRAL_KAFKA__RETRY_INITIAL_SECONDS": "0.2",
        "CENTRAL_KAFKA__RETRY_MAX_SECONDS": "1.0",
        "CENTRAL_KAFKA__POLL_INTERVAL_SECONDS": "0.2",
        "PYTHONUNBUFFERED": "1",
    }


def migrate(db_url: str, log: Path) -> None:
    """`central-sync migrate` against the database (the real command line)."""
    env = central_env(db_url, "mqtt://127.0.0.1:1", "127.0.0.1:1", "central-migrate")
    with log.open("ab") as out:
        subprocess.run([sys.executable, "-m", "central_sync", "migrate"], env=env, stdout=out,
                       stderr=subprocess.STDOUT, check=True, timeout=120)


class CentralProcess:
    """`central-sync serve` as a process on a free port: start, SIGKILL, SIGSTOP/SIGCONT, restart."""

    def __init__(self, workdir: Path, db_url: str, mqtt_url: str, kafka: str, client_id: str, **env: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = central_env(db_url, mqtt_url, kafka, client_id) | env
        self.client_id = client_id
        self.port = free_port()
        self.log = workdir / f"{client_id}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait until /api/v1/health answers; returns the seconds that took."""
        started = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "central_sync", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"central exited with {self.process.returncode}: {self.tail()}")
            with contextlib.suppress(OSError, ValueError):
                self.health()
                return time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError(f"central not answering after {timeout} s: {self.tail()}")

    def health(self) -> dict[str, Any]:
        """The `data` of GET /api/v1/health (raises OSError when it does not answer)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return dict(json.loads(response.read())["data"])
        except urllib.error.HTTPError as err:  # 503 (database down) still carries the document
            return dict(json.loads(err.read())["data"])

    def wait_subscribed(self, within: float = 30.0) -> None:
        """Wait until it is connected to the broker, plus a moment for its SUBSCRIBE to be registered."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if self.health()["mqtt"]["connected"]:
                    time.sleep(0.5)
                    return
            time.sleep(0.1)
        raise TimeoutError(f"central not connected to the broker after {within} s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, nothing uncommitted survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process dies only once it runs
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: frozen mid-flight (sockets stay open)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def tail(self) -> str:
        """The end of the process log, for failure messages."""
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


# ---- Kafka -----------------------------------------------------------------------------------------------------

def kill(service: Tansu) -> None:
    """SIGKILL a service started by tests.services (by its PID); `start()` brings it back on the same port."""
    if service.process is not None:
        service.process.kill()
        service.process.wait(timeout=30)
        service.process = None


async def create_topics(bootstrap: str, names: Sequence[str] = ALL_TOPICS, within: float = 30.0) -> None:
    """Create the topics that are missing (central's relay may have created them first)."""
    deadline = time.monotonic() + within
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="chaos-admin")
        try:
            await admin.start()
            try:
                missing = sorted(set(names) - set(await admin.list_topics()))
                if missing:
                    await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in missing])
                return
            finally:
                await admin.close()
        except (KafkaError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


class KafkaKeys:
    """Reads the job topics continuously (manual assignment from the beginning; no consumer group) and collects
    every record's key. tansu keeps its log in memory only: call `detach()` before its broker stops (after a
    `caught_up()` while nothing produces) and `attach()` to the restarted broker, which starts from offset 0."""

    def __init__(self, topics: Sequence[str] = JOB_TOPICS) -> None:
        self.topics = tuple(topics)
        self.keys: dict[str, list[str]] = {topic: [] for topic in self.topics}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._next: dict[TopicPartition, int] = {}
        self.attachments = 0

    async def attach(self, bootstrap: str, within: float = 30.0) -> None:
        """Start reading every partition of the topics on this broker from its first record."""
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=100, request_timeout_ms=10_000)
        await consumer.start()
        try:
            partitions: list[TopicPartition] = []
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                await consumer.topics()  # refreshes the metadata
                found = {topic: consumer.partitions_for_topic(topic) or set() for topic in self.topics}
                if all(found.values()):
                    partitions = [TopicPartition(t, p) for t, ps in found.items() for p in sorted(ps)]
                    break
                await asyncio.sleep(0.2)
            if not partitions:
                raise AssertionError(f"topics {self.topics} did not appear on {bootstrap}")
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
        except BaseException:
            await consumer.stop()
            raise
        self._next = {tp: 0 for tp in partitions}
        self._consumer = consumer
        self.attachments += 1
        self._task = asyncio.create_task(self._read(consumer), name="kafka-keys")

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, messages in batches.items():
                self.keys[tp.topic].extend(m.key.decode() for m in messages if m.key is not None)
                if messages:
                    self._next[tp] = messages[-1].offset + 1

    async def caught_up(self) -> bool:
        """True when every record the broker holds now has been read."""
        if self._consumer is None or self._task is None:
            return False
        if self._task.done():
            self._task.result()  # a reader that died raises its error here
        ends = await self._consumer.end_offsets(list(self._next))
        return all(self._next[tp] >= end for tp, end in ends.items())

    async def detach(self) -> None:
        """Stop reading (the broker is about to go away)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await consumer.stop()

    def counts(self) -> dict[str, int]:
        """Records read per topic (duplicates included)."""
        return {topic: len(keys) for topic, keys in self.keys.items()}


# ---- the node ------------------------------------------------------------------------------------------------

def label_image(number: int) -> bytes:
    """A 64x32 PNG with two glyphs and `number` in a row of dots: distinct bytes per number."""
    image = Image.new("RGB", (64, 32), "white")
    draw = ImageDraw.Draw(image)
    glyphs = GLYPHS[number % len(GLYPHS)] + GLYPHS[number // len(GLYPHS) % len(GLYPHS)]
    draw.text((8, 6), glyphs, fill="black", font=ImageFont.load_default(size=18))
    for bit in range(24):
        if number >> bit & 1:
            image.putpixel((bit * 2 + 8, 30), (0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def blank_image(number: int) -> bytes:
    """A uniformly coloured 64x32 PNG (distinct colour per number): the node fails it with LOW_QUALITY."""
    image = Image.new("RGB", (64, 32), (number % 256, number // 256 % 256, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def submit(node: EdgeProcess, images: Sequence[bytes], doc_type: str = "barcode",
                 concurrency: int = 16) -> list[str]:
    """POST every image to /api/v1/ocr/process/async; returns the job ids (every answer must be 202)."""
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {node.token()}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def one(image: bytes) -> str:
            async with gate:
                form = aiohttp.FormData()
                form.add_field("image", image, filename="x.png", content_type="image/png")
                form.add_field("type", doc_type)
                async with session.post(f"{node.url}/api/v1/ocr/process/async", data=form,
                                        headers=headers) as response:
                    body = await response.json()
                    assert response.status == 202, body
                    return str(body["data"]["job_id"])

        return list(await asyncio.gather(*(one(image) for image in images)))


def node_db(node: EdgeProcess) -> sqlite3.Connection:
    """A read connection to the node's SQLite file (WAL: safe next to the running node)."""
    return sqlite3.connect(node.data_dir / "edge.sqlite3", timeout=10)


def node_counts(node: EdgeProcess) -> tuple[dict[str, int], int]:
    """(jobs per status, outbox rows) of the node."""
    with contextlib.closing(node_db(node)) as conn:
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM ocr_processing_jobs GROUP BY status").fetchall())
        outbox = int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    return {str(k): int(v) for k, v in statuses.items()}, outbox
