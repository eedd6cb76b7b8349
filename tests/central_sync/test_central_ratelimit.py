"""Rate limits of the central HTTP API on the real app (real PostgreSQL and Mosquitto behind it): per user and per
shop, exact counts, 429 QUOTA_EXCEEDED in the dashboard's envelope with Retry-After and X-RateLimit-*; every
authenticated /api/v1 route is counted, health and callers without a valid token are not; 0 disables."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from aiohttp import web

from central_sync.app import create_app
from central_sync.config import CentralConfig
from central_sync.ratelimit import RATE_LIMITER

pytestmark = pytest.mark.integration

SECRET = "ratelimit-test-secret-long-enough-for-hs256"
ME = "/api/v1/dashboard/me"


class FakeClock:
    """Monotonic seconds that only move when told."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def token(sub: str, shop_id: str | None = None) -> dict[str, str]:
    """A shop user's token (with shop_id) or an operator's (without)."""
    claims: dict[str, Any] = {"sub": sub, "exp": int(time.time()) + 600}
    claims.update({"shop_id": shop_id} if shop_id else {"role": "operator"})
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


async def _client(make_config: Any, aiohttp_client: Any, user: int, shop: int,
                  extra_route: bool = False) -> tuple[Any, FakeClock]:
    config: CentralConfig = make_config()
    config.kafka.enabled = False
    config.dashboard.jwt_secret = SECRET
    config.rate_limit.user_per_minute = user
    config.rate_limit.shop_per_hour = shop
    app = create_app(config)
    if extra_route:  # stands for any other authenticated API mounted under /api/v1 (the model registry)
        async def other(request: web.Request) -> web.Response:
            return web.json_response({"success": True, "data": {}})

        app.router.add_get("/api/v1/other", other)
    client = await aiohttp_client(app)
    clock = FakeClock()
    if user or shop:
        client.app[RATE_LIMITER].clock = clock
    return client, clock


async def test_user_quota_is_exact_and_answers_429_in_the_envelope(make_config, aiohttp_client) -> None:
    client, clock = await _client(make_config, aiohttp_client, user=3, shop=1000)
    for second, remaining, reset in ((0, 2, 60), (1, 1, 59), (2, 0, 58)):
        clock.now = 5000.0 + second
        response = await client.get(ME, headers=token("ana", "shop-1"))
        assert response.status == 200, await response.text()
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
        assert response.headers["X-RateLimit-Reset"] == str(reset)
    clock.now = 5010.0
    refused = await client.get(ME, headers=token("ana", "shop-1"))
    assert refused.status == 429
    assert await refused.json() == {"success": False, "error": {
        "code": "QUOTA_EXCEEDED",
        "message": "rate limit reached: 3 requests per 60 s for this user; try again in 50 s",
        "details": {"scope": "user", "limit": 3, "window_seconds": 60.0},
    }}
    assert refused.headers["Retry-After"] == "50" and refused.headers["X-RateLimit-Reset"] == "50"
    assert refused.headers["X-RateLimit-Remaining"] == "0" and refused.headers["X-RateLimit-Limit"] == "3"
    # Another user of the same shop has a quota of their own; the refusal itself did not count.
    assert (await client.get(ME, headers=token("bo", "shop-1"))).status == 200
    clock.now = 5060.0  # the first request has left the window
    again = await client.get(ME, headers=token("ana", "shop-1"))
    assert again.status == 200 and again.headers["X-RateLimit-Remaining"] == "0"


async def test_shop_quota_is_shared_by_its_users_and_not_by_operators(make_config, aiohttp_client) -> None:
    client, clock = await _client(make_config, aiohttp_client, user=100, shop=4)
    for user in ("ana", "bo", "ana", "cy"):
        assert (await client.get(ME, headers=token(user, "shop-1"))).status == 200
    refused = await client.get(ME, headers=token("dee", "shop-1"))  # a fifth user, first request
    body = await refused.json()
    assert refused.status == 429 and body["error"]["details"] == {"scope": "shop", "limit": 4,
                                                                    "window_seconds": 3600.0}
    assert refused.headers["Retry-After"] == "3600"
    assert (await client.get(ME, headers=token("ana", "shop-2"))).status == 200  # another shop is untouched
    # An operator belongs to no shop: the user quota applies, and looking at shop-1 spends none of shop-1's.
    operator = await client.get("/api/v1/dashboard/me", params={"shop_id": "shop-1"}, headers=token("op"))
    assert operator.status == 200 and operator.headers["X-RateLimit-Limit"] == "100"
    clock.now += 3600
    assert (await client.get(ME, headers=token("dee", "shop-1"))).status == 200


async def test_every_authenticated_api_route_counts_but_health_and_bad_tokens_do_not(
        make_config, aiohttp_client) -> None:
    client, _clock = await _client(make_config, aiohttp_client, user=2, shop=1000, extra_route=True)
    for _ in range(5):
        health = await client.get("/api/v1/health")
        assert health.status in (200, 503) and "X-RateLimit-Limit" not in health.headers
        anonymous = await client.get(ME)
        assert anonymous.status == 401 and "X-RateLimit-Limit" not in anonymous.headers
        forged_token = jwt.encode({"sub": "ana", "shop_id": "shop-1", "exp": int(time.time()) + 600},
                                  "another-secret-entirely-and-long-enough-for-hs256", algorithm="HS256")
        forged = await client.get(ME, headers={"Authorization": "Bearer " + forged_token})
        assert forged.status == 401 and "X-RateLimit-Limit" not in forged.headers
    page = await client.get("/dashboard/", headers=token("ana", "shop-1"))
    assert page.status == 200 and "X-RateLimit-Limit" not in page.headers  # the static page is not the API
    other = await client.get("/api/v1/other", headers=token("ana", "shop-1"))
    assert other.status == 200 and other.headers["X-RateLimit-Remaining"] == "1"
    missing = await client.get("/api/v1/dashboard/no-such-view", headers=token("ana", "shop-1"))
    assert missing.status == 404 and missing.headers["X-RateLimit-Remaining"] == "0"  # errors count too
    refused = await client.get(ME, headers=token("ana", "shop-1"))
    assert refused.status == 429 and (await refused.json())["error"]["code"] == "QUOTA_EXCEEDED"


async def test_zero_disables_both_quotas(make_config, aiohttp_client) -> None:
    client, _clock = await _client(make_config, aiohttp_client, user=0, shop=0)
    assert RATE_LIMITER not in client.app
    for _ in range(5):
        response = await client.get(ME, headers=token("ana", "shop-1"))
        assert response.status == 200 and "X-RateLimit-Limit" not in response.headers


def test_quotas_come_from_the_environment() -> None:
    from central_sync.config import load_config

    config = load_config(environ={"CENTRAL_RATE_LIMIT__USER_PER_MINUTE": "7",
                                  "CENTRAL_RATE_LIMIT__SHOP_PER_HOUR": "0"})
    assert (config.rate_limit.user_per_minute, config.rate_limit.shop_per_hour) == (7, 0)
    assert (CentralConfig().rate_limit.user_per_minute, CentralConfig().rate_limit.shop_per_hour) == (300, 20_000)
