"""The scan page in headless Chromium against the real node (real engines, real SQLite, a real HTTP port):
token messages, upload of a bench price tag, live progress over the WebSocket, the result, a correction, and the
node's accuracy moving in /api/v1/metrics. Phone (375x667) and tablet (1024x768) screens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge_node.app import create_app
from edge_node.auth import issue_token
from edge_node.config import EdgeConfig
from edge_node.engines.registry import EngineSet
from tests.browser.cdp import Browser, Page
from tests.browser.servers import serve

pytestmark = pytest.mark.integration

SECRET = "test-secret-that-is-long-enough-for-hs256"  # the edge_config fixture's secret (shop-a)
BENCH_TAG = Path(__file__).resolve().parents[3] / "shared" / "bench" / "price_tags" / "20240913_161202_1111_2_tag0.jpg"


def _token(shop: str = "shop-a", role: str = "clerk", user: str = "clerk-7") -> str:
    return issue_token(SECRET, user_id=user, shop_id=shop, ttl_seconds=600, role=role)


async def _save_token(page: Page, value: str) -> None:
    await page.fill("#token", value)
    await page.click("#token-form button[type=submit]")


async def _metrics(base: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {_token(role='admin', user='boss')}"}
    async with aiohttp.ClientSession() as session, session.get(f"{base}/api/v1/metrics", headers=headers) as response:
        data: dict[str, Any] = (await response.json())["data"]
        return data


async def _no_horizontal_scroll(page: Page) -> bool:
    return bool(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


async def test_scan_correct_and_see_accuracy(
    browser: Browser, edge_config: EdgeConfig, engines: EngineSet, artifacts: Path
) -> None:
    assert BENCH_TAG.exists(), BENCH_TAG
    async with serve(create_app(edge_config, engines)) as base:
        page = await browser.new_page(375, 667, mobile=True)
        await page.goto(f"{base}/")
        await page.wait_for("document.getElementById('token-status').textContent.includes('No token')")

        # Wrong tokens get a clear message: 401 (not valid) and 403 (another shop).
        await _save_token(page, "not-a-token")
        await page.wait_for("document.getElementById('token-status').textContent.includes('refused')",
                            what="the 401 message")
        await page.screenshot(artifacts / "scan-401-phone.png")
        await _save_token(page, _token(shop="shop-z"))
        await page.wait_for("document.getElementById('token-status').textContent.includes('another shop')",
                            what="the 403 message")

        clerk = _token()
        await _save_token(page, clerk)
        await page.wait_for("document.getElementById('live').textContent === 'live'", what="the WebSocket")
        assert await page.evaluate("localStorage.getItem('zakpos.token')") == clerk

        # Pick the bench price tag, keep type product / language en, and send it.
        await page.set_files("#file", BENCH_TAG)
        await page.wait_for("!document.getElementById('send').disabled", what="the image picked")
        assert await page.evaluate("document.getElementById('camera').getAttribute('capture')") == "environment"
        await page.click("#send")
        await page.wait_for("!document.getElementById('result-card').hidden", within=30, what="the result")
        frames = page.websocket_frames()
        events = [f["event"] for f in frames if f.get("event", "").startswith("job_")]
        assert events[0] == "job_queued" and "job_started" in events and events[-1] == "job_completed", events
        steps = [f["current_step"] for f in frames if f.get("event") == "job_progress"]
        assert "recognize" in steps, steps
        assert await page.text("#progress-step") == "done"
        assert await page.evaluate("document.getElementById('progress').getAttribute('aria-valuenow')") == "100"
        assert await page.text("#text")
        returned_price = await page.evaluate("document.getElementById('field-price').value")
        assert await _no_horizontal_scroll(page)
        await page.screenshot(artifacts / "scan-result-phone.png")

        # No corrections yet: accuracy unknown.
        assert (await _metrics(base))["model_accuracy"] == {"overall": None, "by_field": {}, "corrections": 0}

        # Correct the product name (the node's value, if any, becomes wrong); keep the price.
        await page.fill("#field-product_name", "Browser Test Label")
        assert await page.evaluate("document.querySelector('#field-product_name').parentElement"
                                   ".classList.contains('changed')")
        await page.click("#save")
        await page.wait_for("document.getElementById('save-status').textContent.startsWith('Saved')",
                            what="the correction saved")
        accuracy = (await _metrics(base))["model_accuracy"]
        assert accuracy["corrections"] == 1 and accuracy["overall"] is not None
        assert accuracy["by_field"]["product_name"] == 0.0
        if returned_price:
            assert accuracy["by_field"]["price"] == 1.0
        # A clerk is told that accuracy is for admins; with an admin token the page shows it.
        assert "admins" in await page.text("#accuracy")
        await _save_token(page, _token(role="admin", user="boss"))
        await page.wait_for("document.getElementById('accuracy').dataset.overall !== undefined", what="accuracy")
        await page.wait_for("document.getElementById('live').textContent === 'live'", what="reconnected")
        assert float(await page.evaluate("document.getElementById('accuracy').dataset.overall")) == accuracy["overall"]
        await page.screenshot(artifacts / "scan-corrected-phone.png")

        # Tablet: the form and the result side by side, nothing wider than the screen.
        await page.resize(1024, 768)
        layout = json.loads(await page.evaluate(
            "JSON.stringify([document.getElementById('scan-card').getBoundingClientRect(),"
            " document.getElementById('result-card').getBoundingClientRect()])"
        ))
        assert layout[1]["left"] >= layout[0]["right"] and abs(layout[1]["top"] - layout[0]["top"]) < 2
        assert await _no_horizontal_scroll(page)
        await page.screenshot(artifacts / "scan-result-tablet.png")
