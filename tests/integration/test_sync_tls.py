"""Sync over a real TLS Mosquitto, end to end, with a PKI the test makes itself (tests/tls_pki.py).

The broker has two TLS listeners signed by the test CA: one for nodes that REQUIRES a client certificate of that
CA (and takes the certificate's CN as the user name, as an ACL would use it), one for central that checks only
the server side (central authenticates with a password in production; its config has a CA file, no client
certificate). A real `edge-node serve` with mqtts://, CA, client certificate and key, and a real
`central-sync serve` with mqtts:// and the CA: OCR results reach PostgreSQL and central's acks drain the node's
outbox, so both directions run over TLS. Then the refusals, with the services' own MQTT clients: no client
certificate, a client certificate of another CA, a client that does not trust the broker's CA, plain MQTT on the
TLS port; the same clients with the right files connect (the control).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from bench.node_process import SHOP, EdgeProcess
from central_sync.config import MqttConfig
from central_sync.mqtt import MqttLink as CentralLink
from edge_node.config import SyncConfig
from edge_node.sync.mqtt import MqttLink as NodeLink
from tests.integration.sync_cluster import CentralProcess, fresh_database, label_image, node_counts, submit, wait_until
from tests.services import Mosquitto, TlsListener, free_port, plain_dsn
from tests.tls_pki import CertificateAuthority, Issued

pytestmark = pytest.mark.integration

NODE = "node-tls-1"
JOBS = 3
#: How long a refused client is given to (not) connect; the controls connect in well under a second.
REFUSAL_WAIT_SECONDS = 4.0


@dataclass(frozen=True)
class Pki:
    ca: CertificateAuthority
    server: Issued
    node: Issued
    rogue_ca: CertificateAuthority
    rogue_node: Issued


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = CertificateAuthority(tmp_path / "pki")
    rogue = CertificateAuthority(tmp_path / "rogue", name="rogue-ca")
    return Pki(ca=ca, server=ca.server(), node=ca.client(NODE), rogue_ca=rogue, rogue_node=rogue.client(NODE))


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[tuple[Mosquitto, TlsListener, TlsListener]]:
    """(broker, nodes' listener with client certificates required, central's listener)."""
    nodes = TlsListener(pki.ca.cert, pki.server.cert, pki.server.key, require_certificate=True,
                        use_identity_as_username=True)
    central = TlsListener(pki.ca.cert, pki.server.cert, pki.server.key)
    broker = Mosquitto(tmp_path / "mosquitto", tls=[nodes, central]).start()
    yield broker, nodes, central
    broker.stop()


def _node_health(node: EdgeProcess) -> dict[str, object]:
    with urllib.request.urlopen(f"{node.url}/api/v1/health", timeout=5) as response:
        return dict(json.loads(response.read())["data"])


def test_a_node_syncs_to_central_over_tls_with_client_certificates(
        tmp_path: Path, pki: Pki, tls_broker: tuple[Mosquitto, TlsListener, TlsListener]) -> None:
    broker, nodes, central_listener = tls_broker
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(tmp_path / "pg", "tls_sync"))
        central = CentralProcess(tmp_path / "central", db_url, central_listener.url, f"127.0.0.1:{free_port()}",
                                 "central-tls", CENTRAL_KAFKA__ENABLED="false",
                                 CENTRAL_MQTT__TLS_CA_FILE=str(pki.ca.cert))
        stack.callback(central.stop)
        central.start()
        central.wait_subscribed()
        node = EdgeProcess(tmp_path / "node", 2, (), EDGE_NODE_ID=NODE, EDGE_SHOP_ID=SHOP,
                           EDGE_SYNC__ENABLED="true", EDGE_SYNC__BROKER_URL=nodes.url,
                           EDGE_SYNC__TLS_CA_FILE=str(pki.ca.cert), EDGE_SYNC__TLS_CERT_FILE=str(pki.node.cert),
                           EDGE_SYNC__TLS_KEY_FILE=str(pki.node.key), EDGE_SYNC__METRICS_INTERVAL_SECONDS="3600",
                           EDGE_CACHE__ENABLED="false")
        stack.callback(node.kill)
        node.start()

        async def run() -> tuple[list[str], list[asyncpg.Record]]:
            job_ids = await submit(node, [label_image(n) for n in range(JOBS)])

            async def drained() -> bool:
                statuses, backlog = node_counts(node)
                return statuses.get("completed", 0) == JOBS and backlog == 0

            await wait_until(drained, 120, "every job completed and acked by central over TLS")
            conn = await asyncpg.connect(plain_dsn(db_url))
            try:
                rows = await conn.fetch(
                    "SELECT job_id, shop_id, status FROM ocr_processing_jobs WHERE node_id = $1", NODE)
            finally:
                await conn.close()
            return job_ids, rows

        job_ids, rows = asyncio.run(run())
        sync = _node_health(node)["sync"]
        central_mqtt = central.health()["mqtt"]

    assert sorted(r["job_id"] for r in rows) == sorted(job_ids)
    assert {(r["shop_id"], r["status"]) for r in rows} == {(SHOP, "completed")}
    assert isinstance(sync, dict) and sync["connected"] is True and sync["backlog"] == 0
    assert central_mqtt["connected"] is True
    log = broker.log.read_text(errors="replace")
    # The node logged in as its certificate's CN (use_identity_as_username): what an ACL's %u would see.
    assert f"u'{NODE}'" in log, log[-3000:]


async def _node_connects(url: str, ca: Path | None, client: Issued | None, name: str) -> bool:
    """The node's own MQTT link with these TLS files: connected within REFUSAL_WAIT_SECONDS?"""
    settings = SyncConfig(enabled=True, broker_url=url, tls_ca_file=ca,
                          tls_cert_file=client.cert if client else None, tls_key_file=client.key if client else None,
                          reconnect_min_seconds=0.2, reconnect_max_seconds=0.5)
    link = NodeLink(settings, f"edge-{name}", will_topic=f"zakpos/v1/{SHOP}/{NODE}/up/status", will_payload=b"x")
    loop = asyncio.get_running_loop()
    connected = asyncio.Event()
    link.on_connect(lambda _session_present: connected.set())
    link.start(loop)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connected.wait(), REFUSAL_WAIT_SECONDS)
        return connected.is_set()
    finally:
        await loop.run_in_executor(None, link.stop)


async def _central_connects(url: str, ca: Path | None, name: str, client: Issued | None = None) -> bool:
    """Central's own MQTT link with this CA file (and client certificate): connected within REFUSAL_WAIT_SECONDS?"""
    link = CentralLink(MqttConfig(url=url, client_id=f"central-{name}", tls_ca_file=ca, reconnect_min_seconds=1,
                                  tls_cert_file=client.cert if client else None,
                                  tls_key_file=client.key if client else None,
                                  reconnect_max_seconds=1), on_message=lambda _message: None)
    link.start()
    try:
        return await link.wait_connected(REFUSAL_WAIT_SECONDS)
    finally:
        await link.stop()


async def test_clients_without_the_right_ca_or_certificate_are_refused(
        pki: Pki, tls_broker: tuple[Mosquitto, TlsListener, TlsListener]) -> None:
    broker, nodes, central = tls_broker
    plain_on_tls_port = f"mqtt://127.0.0.1:{nodes.port}"
    outcomes = await asyncio.gather(
        _node_connects(nodes.url, pki.ca.cert, pki.node, "control"),
        _node_connects(nodes.url, pki.ca.cert, None, "no-client-cert"),
        _node_connects(nodes.url, pki.ca.cert, pki.rogue_node, "cert-of-another-ca"),
        _node_connects(nodes.url, pki.rogue_ca.cert, pki.node, "broker-not-trusted"),
        _node_connects(plain_on_tls_port, None, None, "plain-on-tls-port"),
        _central_connects(central.url, pki.ca.cert, "control"),
        _central_connects(central.url, None, "system-cas-only"),
        _central_connects(central.url, pki.rogue_ca.cert, "another-ca"),
        _central_connects(nodes.url, pki.ca.cert, "client-cert", pki.ca.client("central-replica")),
        _central_connects(nodes.url, pki.ca.cert, "no-client-cert"),
    )
    names = ["node control", "node without client cert", "node cert of another CA", "node not trusting the broker",
             "plain MQTT on the TLS port", "central control", "central with system CAs", "central with another CA",
             "central with a client cert", "central without one where required"]
    assert dict(zip(names, outcomes, strict=True)) == {
        "node control": True, "node without client cert": False, "node cert of another CA": False,
        "node not trusting the broker": False, "plain MQTT on the TLS port": False, "central control": True,
        "central with system CAs": False, "central with another CA": False,
        "central with a client cert": True, "central without one where required": False,
    }
    log = broker.log.read_text(errors="replace")
    assert "edge-control" in log and "central-control" in log  # the controls reached the broker and logged in
    # Each refusal for its own reason (OpenSSL 3's words, as Mosquitto logs them).
    for reason in ("peer did not return a certificate", "certificate verify failed", "alert unknown ca",
                   "wrong version number"):
        assert reason in log, f"no {reason!r} in the broker log: {log[-3000:]}"
    for refused in ("edge-no-client-cert", "edge-cert-of-another-ca", "edge-broker-not-trusted",
                    "central-system-cas-only", "central-another-ca"):
        assert f"as {refused} " not in log, f"{refused} logged in: {log[-3000:]}"
