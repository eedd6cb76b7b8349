"""The scan page is served by the node, needs no token, and loads nothing from outside the node (offline LAN)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from edge_node.app import create_app
from edge_node.config import EdgeConfig
from edge_node.engines.registry import EngineSet
from edge_node.web import STATIC_DIR, WEB_DIR

#: Any absolute URL to another host (a CDN, a font service) would break a shop with no internet.
EXTERNAL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


async def test_page_and_static_files_are_public(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], edge_config: EdgeConfig, engines: EngineSet
) -> None:
    client = await aiohttp_client(create_app(edge_config, engines))
    page = await client.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    html = await page.text()
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        response = await client.get(asset)
        assert response.status == 200, asset
    assert 'capture="environment"' in html and 'accept="image/*"' in html
    assert (await client.get("/static/missing.js")).status == 404
    # The API itself still needs a token.
    assert (await client.get("/api/v1/metrics")).status == 401


def test_no_external_resources_and_no_inline_script() -> None:
    files = [WEB_DIR / "index.html", *sorted(STATIC_DIR.iterdir())]
    assert {f.name for f in files} >= {"index.html", "app.js", "style.css"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not EXTERNAL.search(text), f"{path.name} refers to another host"
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in html and " style=" not in html and "onclick" not in html.lower()
