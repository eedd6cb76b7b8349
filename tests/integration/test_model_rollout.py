"""A model rolled out end to end, with no hub and no download from outside: the tiny TrOCR model trained here
(tests/tiny_trocr.py), exported and quantised by `model-export trocr`, signed, uploaded with
`central-sync models upload` to a real central service (PostgreSQL), rolled out over a real Mosquitto to a real
`edge-node serve`, which swaps to it and reads the training strings through POST /api/v1/ocr/process.

Then what must not take: a bundle signed by a key the node does not trust, a stored tar changed after upload
(tampered in central's storage or in transit), a bundle whose self-test fails on the node: each is refused with
its reason in /health and in the node's error log synced to central, while the node keeps serving. A shadow
rollout reports its agreement to central before promotion, and rollbacks walk back to the embedded default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from bundle_variants import other_key, variant
from support import encode, render_lines
from tiny_trocr import TEXTS, TinyBundle, build

from bench.node_process import SHOP, EdgeProcess
from edge_node.engines.registry import EngineSet
from tests.integration.sync_cluster import CentralProcess, fresh_database, wait_until
from tests.services import Mosquitto, free_port, plain_dsn

pytestmark = pytest.mark.integration

NODE = "node-models"
NAME = "tiny-trocr"
SECRET = "central-dashboard-secret-long-enough-for-hs256"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, engines: EngineSet) -> TinyBundle:
    return build(tmp_path_factory.mktemp("tiny-trocr"), engines.detector)


class Central:
    """The running central service and its command line, with the same environment."""

    def __init__(self, process: CentralProcess) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{process.port}"

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "central_sync", *args], env=self.process.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"central-sync {' '.join(args)} failed: {done.stdout}\n{done.stderr}"
        return done.stdout


async def health(node: EdgeProcess) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{node.url}/api/v1/health") as response:
        return dict((await response.json())["data"])


async def read(node: EdgeProcess, text: str) -> tuple[str, str]:
    form = aiohttp.FormData()
    form.add_field("image", encode(render_lines([text])), filename="line.png", content_type="image/png")
    form.add_field("extract_barcodes", "false")
    headers = {"Authorization": f"Bearer {node.token()}"}
    async with aiohttp.ClientSession() as session, session.post(
            f"{node.url}/api/v1/ocr/process", data=form, headers=headers) as response:
        body = await response.json()
    assert response.status == 200, body
    return body["data"]["text"], body["data"]["model_used"]


async def serving(node: EdgeProcess) -> str:
    return str((await health(node))["models"]["serving"]["en"])


async def wait_serving(node: EdgeProcess, expected: str, within: float = 90) -> None:
    async def check() -> bool:
        return await serving(node) == expected
    await wait_until(check, within, f"the node serves {expected} (it serves {await serving(node)})", 0.3)


async def wait_failure(node: EdgeProcess, version: str, stage: str, within: float = 90) -> dict[str, Any]:
    async def check() -> bool:
        last = (await health(node))["models"]["last_update"] or {}
        return last.get("model") == f"{NAME}@{version}" and last.get("stage") == stage
    await wait_until(check, within, f"the node refuses {version} at {stage}", 0.3)
    return dict((await health(node))["models"]["last_update"])


async def fetch(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def flip_a_byte(storage: Path, version: str) -> None:
    """Change one byte in the middle of a stored bundle tar (an attacker or a failing disk at central)."""
    stored = next(storage.rglob(f"{version}/*.tar"))
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))


async def scenario(central: Central, node: EdgeProcess, dsn: str, bundles: dict[str, Path],
                   storage: Path) -> None:
    # Before any rollout the node serves its embedded default.
    assert await serving(node) == "ppocr"
    assert (await read(node, TEXTS[0]))[1] != "trocr"

    central.cli("models", "upload", str(bundles["1.0.0"]))
    central.cli("models", "rollout", NAME, "1.0.0", "--all")
    await wait_serving(node, f"trocr:{NAME}@1.0.0")
    for text in TEXTS:
        assert await read(node, text) == (text, "trocr")

    async def reported() -> bool:
        rows = await fetch(dsn, "SELECT model_version FROM nodes WHERE node_id = $1", NODE)
        return bool(rows) and f"{NAME}@1.0.0" in (rows[0]["model_version"] or "")
    await wait_until(reported, 60, "central's nodes table shows the node's model version")
    listing = json.loads(central.cli("models", "list", "--json"))
    active = [r for r in listing["rollouts"] if r["version"] == "1.0.0"]
    assert active and active[0]["nodes_reporting"] == 1, listing

    # Shadow first, then promotion.
    central.cli("models", "upload", str(bundles["5.0.0"]))
    central.cli("models", "rollout", NAME, "5.0.0", "--all", "--shadow", "--sample", "1")

    async def shadowing() -> bool:
        return ((await health(node))["models"].get("shadow") or {}).get("model") == f"{NAME}@5.0.0"
    await wait_until(shadowing, 90, "the node runs 5.0.0 in shadow mode")
    for text in TEXTS:
        assert await read(node, text) == (text, "trocr")
        await asyncio.sleep(0.3)  # let the background comparison finish (a busy shadow skips samples)

    async def agreement_reported() -> bool:
        rows = await fetch(dsn, "SELECT value FROM ocr_model_metrics WHERE node_id = $1 AND model_name = $2 "
                                "AND metric_name = 'shadow_agreement'", NODE, f"{NAME}@5.0.0")
        return bool(rows)
    await wait_until(agreement_reported, 60, "the shadow agreement reaches central")
    listing = json.loads(central.cli("models", "list", "--json"))
    shadow = next(r for r in listing["rollouts"] if r["version"] == "5.0.0" and r["shadow"])
    assert shadow["shadow_agreement"]["value"] == 1.0, shadow  # same weights as the serving 1.0.0: same readings
    central.cli("models", "rollout", NAME, "5.0.0", "--all")
    await wait_serving(node, f"trocr:{NAME}@5.0.0")
    assert await read(node, TEXTS[1]) == (TEXTS[1], "trocr")

    # A bundle signed by a key the node does not trust.
    central.cli("models", "upload", str(bundles["3.0.0"]))
    central.cli("models", "rollout", NAME, "3.0.0", "--all")
    failure = await wait_failure(node, "3.0.0", "verify")
    assert "trusted" in failure["reason"]
    assert await serving(node) == f"trocr:{NAME}@5.0.0"
    assert await read(node, TEXTS[2]) == (TEXTS[2], "trocr")

    # A stored tar changed after upload: the node's download does not match the announced sha256.
    central.cli("models", "upload", str(bundles["2.0.0"]))
    await asyncio.to_thread(flip_a_byte, storage, "2.0.0")
    central.cli("models", "rollout", NAME, "2.0.0", "--all")
    failure = await wait_failure(node, "2.0.0", "download")
    assert "sha256" in failure["reason"]
    assert await serving(node) == f"trocr:{NAME}@5.0.0"

    # A bundle whose self-test fails on the node: staged, tested, never swapped in.
    central.cli("models", "upload", str(bundles["4.0.0"]))
    central.cli("models", "rollout", NAME, "4.0.0", "--all")
    failure = await wait_failure(node, "4.0.0", "self-test")
    assert "self-test" in failure["reason"]
    assert await serving(node) == f"trocr:{NAME}@5.0.0"
    assert await read(node, TEXTS[3]) == (TEXTS[3], "trocr")

    async def errors_synced() -> bool:
        rows = await fetch(dsn, "SELECT message FROM ocr_error_logs WHERE node_id = $1 AND job_id IS NULL "
                                "AND code = 'MODEL_UPDATE_FAILED'", NODE)
        text = " ".join(row["message"] or "" for row in rows)
        return all(stage in text for stage in ("verify", "download", "self-test"))
    await wait_until(errors_synced, 60, "the node's model-update errors reach central's error log")

    # Rollbacks walk back through the rollouts to the embedded default; the node never serves a refused one.
    for _ in range(10):
        central.cli("models", "rollback", NAME)
        await asyncio.sleep(1.0)
        assert (await serving(node)) in (f"trocr:{NAME}@5.0.0", f"trocr:{NAME}@1.0.0", "ppocr")
        listing = json.loads(central.cli("models", "list", "--json"))
        if not [r for r in listing.get("rollouts", []) if r.get("name") == NAME and not r.get("shadow")]:
            break
    await wait_serving(node, "ppocr")
    assert (await read(node, TEXTS[4]))[1] != "trocr"


def test_a_signed_model_rolls_out_swaps_in_and_bad_ones_are_refused(tmp_path: Path, tiny: TinyBundle) -> None:
    untrusted = other_key(tmp_path)
    bundles = {
        "1.0.0": variant(tiny, tmp_path, "1.0.0"),
        "2.0.0": variant(tiny, tmp_path, "2.0.0"),
        "3.0.0": variant(tiny, tmp_path, "3.0.0", key=untrusted),
        "4.0.0": variant(tiny, tmp_path, "4.0.0", break_self_test=True),
        "5.0.0": variant(tiny, tmp_path, "5.0.0"),
    }
    storage = tmp_path / "registry"
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(tmp_path / "pg", "model_rollout"))
        broker = Mosquitto(tmp_path / "mosquitto").start()
        stack.callback(broker.stop)
        process = CentralProcess(tmp_path / "central", db_url, broker.url, f"127.0.0.1:{free_port()}",
                                 "central-models", CENTRAL_KAFKA__ENABLED="false",
                                 CENTRAL_REGISTRY__STORAGE_DIR=str(storage), CENTRAL_DASHBOARD__JWT_SECRET=SECRET,
                                 CENTRAL_RATE_LIMIT__USER_PER_MINUTE="0", CENTRAL_RATE_LIMIT__SHOP_PER_HOUR="0")
        stack.callback(process.stop)
        process.start()
        process.wait_subscribed()
        central = Central(process)
        token = central.cli("token", "--user-id", NODE, "--shop-id", SHOP).strip()
        node = EdgeProcess(tmp_path / "node", 1, (), EDGE_NODE_ID=NODE, EDGE_SYNC__ENABLED="true",
                           EDGE_SYNC__BROKER_URL=broker.url, EDGE_SYNC__METRICS_INTERVAL_SECONDS="3600",
                           EDGE_CACHE__ENABLED="false", EDGE_MODELS__UPDATES="true",
                           EDGE_MODELS__CENTRAL_URL=central.url, EDGE_MODELS__CENTRAL_TOKEN=token,
                           EDGE_MODELS__SHADOW_REPORT_SECONDS="1", EDGE_MODELS__DOWNLOAD_ATTEMPTS="2",
                           EDGE_OCR__TRUSTED_KEYS=str(tiny.public_key))
        stack.callback(node.kill)
        node.start()
        asyncio.run(scenario(central, node, plain_dsn(db_url), bundles, storage))
        assert "Traceback" not in node.log.read_text(), node.log.read_text()[-3000:]
