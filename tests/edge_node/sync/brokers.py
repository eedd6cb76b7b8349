"""Test services for sync: an own Mosquitto per test, a fake central that acks, a status observer.

Mosquitto is started on a free loopback port with a temp config and data dir, and stopped by PID (never by
name: the machine's shared broker keeps running). Under CI=true a missing binary fails the test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from shared_models.messages import Ack, Envelope, NodeStatus
from shared_models.topics import PREFIX, UpKind, ack_topic, parse_up_topic

#: Seconds a freshly started broker may take to accept connections.
START_TIMEOUT = 10.0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str:
    """The mosquitto executable; skips the test, or fails it under CI=true, when missing."""
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if found is None:
        message = "mosquitto is not installed (apt-get install -y mosquitto)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


async def eventually(predicate: Callable[[], bool], within: float, interval: float = 0.05) -> bool:
    """Poll `predicate()` (without blocking the event loop) until it is true or `within` seconds pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()


class Mosquitto:
    """One mosquitto process with persistence in `folder`; start, stop (SIGTERM: it saves its state), restart."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.binary = mosquitto_binary()
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {folder}/",
            f"log_dest file {folder}/mosquitto.log",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # mosquitto drops root to user `mosquitto`, who cannot write the temp dir
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}; see {self.folder}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {START_TIMEOUT} s")

    def kill(self) -> None:
        """SIGKILL: a crash; whatever the broker held in memory since its last save is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _client(port: int, client_id: str, session: bool) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.reconnect_delay_set(1, 1)  # tests restart brokers; come back quickly
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600 if session else 0
    client.connect_async("127.0.0.1", port, 30, clean_start=not session, properties=properties)
    return client


class FakeCentral:
    """Plays central_sync: receives envelopes (persistent session), acks the highest contiguous seq per node."""

    def __init__(self, port: int, *, auto_ack: bool = True, client_id: str = "fake-central") -> None:
        self.auto_ack = auto_ack
        self.lock = threading.Lock()
        self.envelopes: list[Envelope] = []
        self.seen: dict[str, set[int]] = {}
        self.shops: dict[str, str] = {}
        self.acked: dict[str, int] = {}
        self.connected = threading.Event()
        self.client = _client(port, client_id, session=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def start(self) -> FakeCentral:
        self.client.loop_start()
        if not self.connected.wait(START_TIMEOUT):
            raise RuntimeError("fake central could not connect")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: paho.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        client.subscribe(f"{PREFIX}/+/+/up/#", qos=1)
        self.connected.set()

    def _on_message(self, _client: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        parsed = parse_up_topic(message.topic)
        if parsed is None or parsed[2] is UpKind.STATUS:
            return
        envelope = Envelope.model_validate_json(message.payload)
        with self.lock:
            self.envelopes.append(envelope)
            self.seen.setdefault(envelope.node_id, set()).add(envelope.seq)
            self.shops[envelope.node_id] = envelope.shop_id
            auto = self.auto_ack
        if auto:
            self.ack(envelope.node_id)

    def contiguous(self, node_id: str) -> int:
        """The highest seq such that every seq from 1 up to it was received (test nodes start from seq 1)."""
        with self.lock:
            seen = self.seen.get(node_id, set())
            top = self.acked.get(node_id, 0)
            while top + 1 in seen:
                top += 1
        return top

    def ack(self, node_id: str, seq: int | None = None) -> int:
        """Publish an Ack for `seq` (default: the highest contiguous seq received)."""
        seq = self.contiguous(node_id) if seq is None else seq
        with self.lock:
            self.acked[node_id] = max(seq, self.acked.get(node_id, 0))
            shop = self.shops[node_id]
        ack = Ack(node_id=node_id, seq=seq, acked_at=datetime.now(UTC))
        self.client.publish(ack_topic(shop, node_id), ack.model_dump_json(), qos=1)
        return seq

    def seqs(self) -> list[int]:
        """Every seq received, in arrival order (duplicates included)."""
        with self.lock:
            return [envelope.seq for envelope in self.envelopes]


class StatusWatcher:
    """Collects every status message of one node as it arrives (the retained one first)."""

    def __init__(self, port: int, topic: str) -> None:
        self.statuses: list[NodeStatus] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = _client(port, f"watcher-{time.monotonic_ns()}", session=False)
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_message = self._on_message

    def start(self) -> StatusWatcher:
        self.client.loop_start()
        if not self.subscribed.wait(START_TIMEOUT):
            raise RuntimeError("status watcher could not subscribe")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.statuses.append(NodeStatus.model_validate_json(message.payload))

    def states(self) -> list[str]:
        with self.lock:
            return [status.state for status in self.statuses]


def retained_status(port: int, topic: str, timeout: float = 5.0) -> NodeStatus | None:
    """The retained status on `topic`, read by a fresh subscriber (None when nothing is retained)."""
    got: list[bytes] = []
    done = threading.Event()
    client = _client(port, f"observer-{time.monotonic_ns()}", session=False)

    def on_connect(c: paho.Client, *_args: object) -> None:
        c.subscribe(topic, qos=1)

    def on_subscribe(*_args: object) -> None:
        threading.Timer(0.5, done.set).start()  # a retained message arrives right after SUBACK, if any

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        got.append(bytes(message.payload))
        done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.loop_start()
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    return NodeStatus.model_validate_json(got[-1]) if got else None
