"""The MQTT link: broker URLs, reconnect backoff, TLS and session settings, hand-off to the event loop."""

from __future__ import annotations

import asyncio
import os
import random
import ssl
import sys
import threading
from pathlib import Path

import pytest

from edge_node.config import ConfigError, SyncConfig
from edge_node.sync.mqtt import (
    SYNC_THREAD_NICE,
    Backoff,
    BrokerAddress,
    MqttLink,
    lower_thread_priority,
    parse_broker_url,
)
from tests.edge_node.sync.brokers import Mosquitto, eventually
from tests.edge_node.sync.conftest import settings


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://broker.local", BrokerAddress("broker.local", 1883, False)),
    ("mqtt://10.0.0.5:1884", BrokerAddress("10.0.0.5", 1884, False)),
    ("mqtts://central.example.com", BrokerAddress("central.example.com", 8883, True)),
    ("MQTTS://central.example.com:443", BrokerAddress("central.example.com", 443, True)),
])
def test_broker_urls(url: str, expected: BrokerAddress) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize("url", ["http://broker:1883", "broker:1883", "mqtt://", "mqtt://host:notaport"])
def test_bad_broker_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="sync.broker_url"):
        parse_broker_url(url)


def test_backoff_grows_with_jitter_within_bounds_and_resets() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(7))
    delays = [backoff.next() for _ in range(12)]
    assert all(1.0 <= delay <= 60.0 for delay in delays)
    assert max(delays[:2]) <= 4.0  # ceilings 2, 4, 8 ... 60
    assert max(delays[6:]) > 8.0
    assert len({round(delay, 6) for delay in delays}) == len(delays)  # jittered, not a fixed ladder
    backoff.reset()
    assert backoff.next() <= 2.0


def test_link_sets_a_persistent_v5_session_last_will_and_credentials() -> None:
    link = MqttLink(settings("mqtt://127.0.0.1:1", username="node-7", password="pw"), "edge-node-7",
                    will_topic="zakpos/v1/s/n/up/status", will_payload=b'{"state":"offline"}')
    client = link.client
    assert client._client_id == b"edge-node-7"
    assert client._protocol == 5
    assert (client._username, client._password) == (b"node-7", b"pw")
    assert client._will and client._will_topic == b"zakpos/v1/s/n/up/status"
    assert client._will_retain and client._will_qos == 1
    assert not link.connected


def test_mqtts_uses_tls_with_the_configured_ca(tmp_path: Path) -> None:
    ca = _self_signed_ca(tmp_path)
    config = SyncConfig(enabled=True, broker_url="mqtts://central.example.com", tls_ca_file=ca)
    link = MqttLink(config, "edge-x", will_topic="t/status", will_payload=b"x")
    assert link.address.tls
    assert link.client._ssl_context is not None
    assert link.client._ssl_context.verify_mode == ssl.CERT_REQUIRED


async def test_messages_and_connect_events_arrive_on_the_event_loop(broker: Mosquitto) -> None:
    loop = asyncio.get_running_loop()
    events: list[tuple[str, object]] = []
    threads: set[bool] = set()

    def record(kind: str) -> object:
        def handler(*args: object) -> None:
            threads.add(asyncio.get_running_loop() is loop)
            events.append((kind, args))
        return handler

    link = MqttLink(settings(broker.url), "edge-loop-test", will_topic="t/status", will_payload=b"offline")
    link.subscribe("t/echo", record("message"))  # type: ignore[arg-type]
    link.on_connect(record("connect"))  # type: ignore[arg-type]
    link.start(loop)
    try:
        assert await eventually(lambda: link.connected and any(k == "connect" for k, _ in events), 5)
        await asyncio.sleep(0.2)  # let the SUBACK come back
        assert link.publish("t/echo", b"hello")
        assert await eventually(lambda: ("message", ("t/echo", b"hello")) in events, 5)
        assert threads == {True}
    finally:
        await loop.run_in_executor(None, link.stop)
    assert not link.connected


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are a Linux feature")
def test_sync_threads_run_at_a_lower_priority_than_the_rest() -> None:
    seen: dict[str, int] = {}

    def probe() -> None:
        lower_thread_priority()
        seen["sync"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert seen["sync"] == SYNC_THREAD_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < SYNC_THREAD_NICE  # this thread untouched


def _self_signed_ca(folder: Path) -> Path:
    """A throwaway CA certificate in PEM, so the TLS set-up never depends on the machine's bundle."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zakpos-test-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path
