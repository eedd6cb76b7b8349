"""The dashboard's JSON API against a real PostgreSQL, fed through the real ingest (Mosquitto): two nodes of two
shops, their jobs, errors, statuses (one goes offline) and clerks' corrections built by the node's own code."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from central_sync.app import create_app
from central_sync.dashboard import STATIC_DIR
from tests.central_sync.dashboard.fleet import seed
from tests.central_sync.harness import eventually

pytestmark = pytest.mark.integration

SECRET = "dashboard-test-secret-long-enough-for-hs256"
API = "/api/v1/dashboard"


def token(sub: str = "op", role: str | None = "operator", shop_id: str | None = None, ttl: int = 600,
          secret: str = SECRET) -> dict[str, str]:
    """Authorization header with a dashboard token."""
    claims: dict[str, Any] = {"sub": sub, "exp": int(time.time()) + ttl}
    if role:
        claims["role"] = role
    if shop_id:
        claims["shop_id"] = shop_id
    return {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}


async def _start(make_config: Any, aiohttp_client: Any, secret: str | None = SECRET) -> Any:
    config = make_config()
    config.kafka.enabled = False
    config.dashboard.jwt_secret = secret
    client = await aiohttp_client(create_app(config))
    health = await client.get("/api/v1/health")
    assert health.status == 200

    async def connected() -> bool:
        return (await (await client.get("/api/v1/health")).json())["data"]["mqtt"]["connected"]

    await eventually(connected, what="central connected to the broker")
    return client


async def _get(client: Any, view: str, headers: dict[str, str] | None = None, **params: str) -> dict[str, Any]:
    response = await client.get(f"{API}/{view}", params=params, headers=headers or token())
    body = await response.json()
    assert response.status == 200 and body["success"], body
    return body["data"]


async def test_views_after_a_sync(make_config, broker, aiohttp_client) -> None:
    client = await _start(make_config, aiohttp_client)
    await seed(broker.url)

    async def statuses_in() -> bool:
        nodes = (await _get(client, "nodes"))["nodes"]
        return [(n["node_id"], n["status"]) for n in nodes] == [("node-a", "online"), ("node-b", "offline")]

    await eventually(statuses_in, what="both statuses applied")
    summary = (await _get(client, "summary"))["summary"]
    assert summary == {"jobs": 5, "completed": 4, "failed": 1, "success_rate": 0.8, "p50_ms": 42.5, "p95_ms": 42.5,
                       "nodes_online": 1, "nodes_offline": 1}
    nodes = {n["node_id"]: n for n in (await _get(client, "nodes"))["nodes"]}
    assert (nodes["node-a"]["shop_id"], nodes["node-a"]["jobs"], nodes["node-a"]["failed"]) == ("shop-1", 4, 1)
    assert nodes["node-a"]["backlog"] == 2 and nodes["node-a"]["model_version"] == "ppocr=v6"
    assert nodes["node-a"]["last_seen"] is not None and nodes["node-b"]["jobs"] == 1
    shops = {s["shop_id"]: s for s in (await _get(client, "shops"))["shops"]}
    assert (shops["shop-1"]["jobs"], shops["shop-1"]["success_rate"], shops["shop-1"]["nodes_online"]) == (4, 0.75, 1)
    assert (shops["shop-2"]["jobs"], shops["shop-2"]["nodes"], shops["shop-2"]["nodes_online"]) == (1, 1, 0)
    series = await _get(client, "jobs_per_hour")
    assert series["bucket"] == "hour"
    per_shop: dict[str, int] = {}
    for point in series["series"]:
        per_shop[point["shop_id"]] = per_shop.get(point["shop_id"], 0) + point["jobs"]
    assert per_shop == {"shop-1": 4, "shop-2": 1}
    assert (await _get(client, "errors"))["errors"] == [{"code": "LOW_QUALITY", "shop_id": "shop-1", "count": 1}]
    accuracy = (await _get(client, "accuracy"))["accuracy"]
    assert accuracy["corrections"] == 2
    assert accuracy["by_field"] == {"price": {"accuracy": 0.5, "checked": 2},
                                    "product_name": {"accuracy": 1.0, "checked": 1}}
    assert accuracy["overall"] == round(2 / 3, 4) and accuracy["by_shop"]["shop-1"]["checked"] == 3
    assert (await _get(client, "rollouts"))["rollouts"] == {"active": [], "summary": "none", "registry": True,
                                                            "revision": 0}

    # Filters: one shop; a range in the past holds nothing; a week+ range is bucketed by day.
    only = await _get(client, "summary", shop_id="shop-2")
    assert only["shops"] == ["shop-2"] and only["summary"]["jobs"] == 1
    past = datetime.now(UTC) - timedelta(days=3)
    empty = await _get(client, "summary", **{"from": past.isoformat(), "to": (past + timedelta(hours=1)).isoformat()})
    assert empty["summary"]["jobs"] == 0 and empty["summary"]["success_rate"] is None
    assert (await _get(client, "jobs_per_hour", hours="400"))["bucket"] == "day"


async def test_a_shop_user_sees_only_its_shop(make_config, broker, aiohttp_client) -> None:
    client = await _start(make_config, aiohttp_client)
    await seed(broker.url)
    shop2 = token("clerk", role=None, shop_id="shop-2")

    async def synced() -> bool:
        return (await _get(client, "summary"))["summary"]["jobs"] == 5

    await eventually(synced, what="seed ingested")
    me = await _get(client, "me", shop2)
    assert me == {"user_id": "clerk", "role": "", "shop_id": "shop-2", "all_shops": False}
    assert [n["node_id"] for n in (await _get(client, "nodes", shop2))["nodes"]] == ["node-b"]
    assert [s["shop_id"] for s in (await _get(client, "shops", shop2))["shops"]] == ["shop-2"]
    assert (await _get(client, "summary", shop2))["summary"]["jobs"] == 1
    assert (await _get(client, "accuracy", shop2))["accuracy"]["overall"] is None
    refused = await client.get(f"{API}/nodes", params={"shop_id": "shop-1"}, headers=shop2)
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "UNAUTHORIZED"),
        ({"Authorization": "Basic abc"}, 401, "UNAUTHORIZED"),
        (token(secret="another-secret-that-is-long-enough-too"), 401, "UNAUTHORIZED"),
        (token(ttl=-3600), 401, "UNAUTHORIZED"),
        (token(role="clerk"), 403, "FORBIDDEN"),
    ],
)
async def test_auth(make_config, aiohttp_client, headers: dict[str, str], status: int, code: str) -> None:
    client = await _start(make_config, aiohttp_client)
    response = await client.get(f"{API}/summary", headers=headers)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def test_validation_unconfigured_secret_and_the_public_page(make_config, aiohttp_client) -> None:
    client = await _start(make_config, aiohttp_client)
    for params in ({"hours": "x"}, {"hours": "0"}, {"from": "yesterday"}, {"hours": str(94 * 24)},
                   {"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"}):
        response = await client.get(f"{API}/summary", params=params, headers=token())
        assert response.status == 400, params
        assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"
    page = await client.get("/dashboard/")
    assert page.status == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert (await client.get("/dashboard/static/dashboard.js")).status == 200
    assert (await client.get("/dashboard", allow_redirects=False)).status == 302
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "https://" not in text and "cdn" not in text.lower(), path.name
    unconfigured = await _start(make_config, aiohttp_client, secret=None)
    response = await unconfigured.get(f"{API}/summary", headers=token())
    assert response.status == 503 and (await response.json())["error"]["code"] == "SERVICE_UNAVAILABLE"
