"""The central dashboard in headless Chromium against the real central service (PostgreSQL, Mosquitto, the real
ingest): two nodes of two shops appear with their counts after a sync; then one goes offline and the page, which
refreshes itself, shows it, and a model rollout appears in the rollouts card (for the shops it reaches)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.app import create_app
from central_sync.config import CentralConfig
from central_sync.db.engine import create_engine
from central_sync.registry import Registry
from shared_models.model_updates import RolloutTarget
from tests.browser.cdp import Browser, Page
from tests.browser.servers import serve
from tests.central_sync.bundles import make_bundle
from tests.central_sync.dashboard.fleet import publish_status, seed
from tests.central_sync.harness import eventually
from tests.services import Mosquitto, free_port

pytestmark = pytest.mark.integration

SECRET = "dashboard-browser-secret-long-enough-for-hs256"


def _token(**claims: str) -> str:
    return jwt.encode({"sub": "ops-1", "exp": int(time.time()) + 600, **claims}, SECRET, algorithm="HS256")


def _config(db_url: str, mqtt_url: str, registry: Path) -> CentralConfig:
    return CentralConfig.model_validate({
        "database": {"url": db_url, "migrate_on_start": False, "pool_size": 2},
        "mqtt": {"url": mqtt_url, "client_id": "central-browser", "session_expiry_seconds": 60},
        "ingest": {"batch_max_wait_ms": 5},
        "kafka": {"enabled": False, "bootstrap": f"127.0.0.1:{free_port()}"},
        "dashboard": {"jwt_secret": SECRET},
        "registry": {"storage_dir": str(registry)},
    })


async def _no_broker(data: bytes, topics: list[str]) -> None:
    """The rollout is only read back by the dashboard here: its announcement is not published."""


async def _shadow_rollout(config: CentralConfig, bundle: Path) -> None:
    engine = create_engine(config.database)
    try:
        registry = Registry(config, engine, publisher=_no_broker)
        await registry.upload(make_bundle(bundle, Ed25519PrivateKey.generate()))
        await registry.rollout("demo-trocr", "1.0.0", RolloutTarget(kind="shops", shops=("shop-1",)), shadow=True)
    finally:
        await engine.dispose()


async def _rows(page: Page) -> dict[str, dict[str, str]]:
    """node id -> {status, jobs, failed} as the nodes table shows them."""
    raw = await page.evaluate(
        "JSON.stringify([...document.querySelectorAll('#nodes tbody tr[data-node]')].map(r => ["
        " r.dataset.node, r.dataset.status, r.cells[6].textContent, r.cells[7].textContent, r.cells[1].textContent]))"
    )
    return {n: {"status": s, "jobs": j, "failed": f, "shop": shop} for n, s, j, f, shop in json.loads(raw)}


async def test_two_shops_then_one_node_offline(
    browser: Browser, central_db: str, mosquitto: Mosquitto, artifacts: Path, tmp_path: Path
) -> None:
    config = _config(central_db, mosquitto.url, tmp_path / "registry")
    async with serve(create_app(config)) as base, aiohttp.ClientSession() as http:
        async def connected() -> bool:
            async with http.get(f"{base}/api/v1/health") as response:
                return bool((await response.json())["data"]["mqtt"]["connected"])

        await eventually(connected, what="central subscribed to the broker")
        await seed(mosquitto.url, b_offline=False)

        page = await browser.new_page(1280, 900)
        await page.goto(f"{base}/dashboard/")
        await page.wait_for("document.getElementById('status').textContent.includes('Paste')")
        await page.fill("#token", _token(role="operator"))
        await page.click("#controls button[type=submit]")
        await page.wait_for("document.querySelectorAll('#nodes tbody tr[data-node]').length === 2", what="2 nodes")
        rows = await _rows(page)
        assert rows == {
            "node-a": {"status": "online", "jobs": "4", "failed": "1", "shop": "shop-1"},
            "node-b": {"status": "online", "jobs": "1", "failed": "0", "shop": "shop-2"},
        }
        assert "operator" in await page.text("#who")
        shops = await page.evaluate("[...document.querySelectorAll('#shops tbody tr')].map(r => r.dataset.shop)")
        assert shops == ["shop-1", "shop-2"]
        kpis = await page.text("#kpis")
        assert "5Jobs" in kpis and "80%Success rate" in kpis and "2Nodes online" in kpis
        # Charts: one series per shop, the error bar, accuracy bars per field from the corrections.
        series = await page.evaluate("[...new Set([...document.querySelectorAll('#series circle')]"
                                     ".map(c => c.dataset.shop))].sort()")
        assert series == ["shop-1", "shop-2"]
        assert await page.evaluate("document.querySelector('#errors rect').dataset.label") == "LOW_QUALITY"
        fields = await page.evaluate("[...document.querySelectorAll('#accuracy rect')].map(r => r.dataset.label)")
        assert fields == ["price", "product_name"]
        assert float(await page.evaluate("document.getElementById('accuracy-overall').dataset.overall")) == 0.6667
        assert await page.text("#rollouts") == "none"
        await page.screenshot(artifacts / "dashboard-two-shops.png")

        # node-b's last will: offline. The page refreshes itself (every 5 s) and shows it.
        await publish_status(mosquitto.url, "shop-2", "node-b", "offline")
        await page.wait_for("document.querySelector('#nodes tr[data-node=\"node-b\"]').dataset.status === 'offline'",
                            within=20, what="node-b offline on the page")
        assert (await _rows(page))["node-a"]["status"] == "online"
        assert "1Nodes offline" in await page.text("#kpis")
        await page.screenshot(artifacts / "dashboard-node-offline.png")

        # A shadow rollout to shop-1 appears in the rollouts card at the next refresh.
        await _shadow_rollout(config, tmp_path / "bundle")
        await page.wait_for("document.querySelectorAll('#rollout-list li').length === 1", within=20,
                            what="the rollout on the page")
        assert (await page.text("#rollouts")).startswith("1 active")
        listed = await page.text("#rollout-list")
        assert "demo-trocr@1.0.0 \u2192 shops shop-1" in listed and "shadow, 10% sample" in listed

        # A shop user's token: only its own shop, no "All shops" choice.
        await page.fill("#token", _token(shop_id="shop-2"))
        await page.click("#controls button[type=submit]")
        await page.wait_for("document.querySelectorAll('#nodes tbody tr[data-node]').length === 1", what="1 node")
        assert list(await _rows(page)) == ["node-b"]
        assert await page.evaluate("[...document.getElementById('shop').options].map(o => o.value)") == ["shop-2"]
        assert await page.text("#rollouts") == "none", "the rollout does not reach shop-2"
        await page.screenshot(artifacts / "dashboard-shop-user.png")
