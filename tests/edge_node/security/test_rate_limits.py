"""Rate limits: exactly N requests per window pass, the next gets 429 with Retry-After and X-RateLimit-*;
the window slides; exempt paths are not counted; 0 disables; the seed's environment names work."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from edge_node.api.ratelimit import RATE_LIMITER, RateLimiter
from edge_node.config import load_config
from tests.edge_node.security.helpers import SecureClient, admin, bearer, upload
from tests.support import encode, render_lines

JOBS = "/api/v1/ocr/jobs"


class FakeClock:
    """Monotonic seconds that only move when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _limited(secure_client: SecureClient, user: int, shop: int) -> tuple[TestClient[Any, Any], FakeClock]:
    client = await secure_client(rate_limit={"user_per_minute": user, "shop_per_hour": shop})
    clock = FakeClock()
    client.app[RATE_LIMITER].clock = clock
    return client, clock


async def test_user_limit_triggers_exactly_at_the_count(secure_client: SecureClient) -> None:
    client, clock = await _limited(secure_client, user=3, shop=1000)
    for second, remaining, reset in ((0, 2, 60), (1, 1, 59), (2, 0, 58)):
        clock.now = 1000.0 + second
        response = await client.get(JOBS, headers=bearer())
        assert response.status == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
        assert response.headers["X-RateLimit-Reset"] == str(reset)  # until the oldest request leaves the window
    clock.now = 1010.0
    refused = await client.get(JOBS, headers=bearer())
    body = await refused.json()
    assert refused.status == 429 and body["error"]["code"] == "QUOTA_EXCEEDED"
    assert body["error"]["details"] == {"scope": "user", "limit": 3, "window_seconds": 60.0}
    assert refused.headers["Retry-After"] == "50" and refused.headers["X-RateLimit-Reset"] == "50"
    assert refused.headers["X-RateLimit-Limit"] == "3" and refused.headers["X-RateLimit-Remaining"] == "0"
    # Another user of the shop is not affected; refusals do not count, so the window slides exactly.
    assert (await client.get(JOBS, headers=bearer(user_id="clerk-2"))).status == 200
    clock.now = 1059.9
    assert (await client.get(JOBS, headers=bearer())).status == 429
    clock.now = 1060.0  # the first request is now 60 s old
    again = await client.get(JOBS, headers=bearer())
    assert again.status == 200 and again.headers["X-RateLimit-Remaining"] == "0"
    clock.now = 1060.5
    assert (await client.get(JOBS, headers=bearer())).headers["Retry-After"] == "1"  # the 1001 s one leaves next


async def test_shop_limit_counts_every_user(secure_client: SecureClient) -> None:
    client, clock = await _limited(secure_client, user=100, shop=5)
    statuses = [(await client.get(JOBS, headers=bearer(user_id=f"clerk-{n}"))).status for n in range(5)]
    assert statuses == [200] * 5
    refused = await client.get(JOBS, headers=admin())  # admins share the shop's quota
    assert refused.status == 429
    assert (await refused.json())["error"]["details"]["scope"] == "shop"
    assert refused.headers["X-RateLimit-Limit"] == "5" and refused.headers["Retry-After"] == "3600"
    clock.now += 3600
    assert (await client.get(JOBS, headers=admin())).status == 200


async def test_ocr_uploads_are_limited_and_refused_before_any_work(secure_client: SecureClient) -> None:
    client, _clock = await _limited(secure_client, user=1, shop=1000)
    image = encode(render_lines(["TEA 1.00"]))
    first = await client.post("/api/v1/ocr/process/async", data=upload(image), headers=bearer())
    assert first.status == 202 and first.headers["X-RateLimit-Remaining"] == "0"
    second = await client.post("/api/v1/ocr/process/async", data=upload(image), headers=bearer())
    assert second.status == 429 and int(second.headers["Retry-After"]) >= 1
    jobs = (await (await client.get(JOBS, headers=bearer(user_id="clerk-2"))).json())["data"]
    assert jobs["count"] == 1  # the refused upload left no job row


async def test_exempt_paths_are_not_counted(secure_client: SecureClient) -> None:
    client, _clock = await _limited(secure_client, user=1, shop=1)
    for path in ("/api/v1/health", "/api/v1/openapi.json", "/api/v1/metrics"):
        for _ in range(3):
            response = await client.get(path, headers=admin())
            assert response.status == 200 and "X-RateLimit-Limit" not in response.headers
    assert (await client.get(JOBS, headers=admin())).status == 200
    assert (await client.get(JOBS, headers=admin())).status == 429
    unauthenticated = await client.get(JOBS)
    assert unauthenticated.status == 401  # no caller, nothing counted or reported
    assert "X-RateLimit-Limit" not in unauthenticated.headers


async def test_zero_disables_both_limits(secure_client: SecureClient) -> None:
    client = await secure_client(rate_limit={"user_per_minute": 0, "shop_per_hour": 0})
    assert RATE_LIMITER not in client.app
    for _ in range(5):
        response = await client.get(JOBS, headers=bearer())
        assert response.status == 200 and "X-RateLimit-Limit" not in response.headers


def test_limiter_boundaries_and_one_disabled_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(user_per_minute=0, shop_per_hour=1000, clock=clock)
    outcomes = [limiter.acquire("s", f"u{n % 7}") for n in range(1001)]
    assert all(d is not None and d.allowed for d in outcomes[:1000])
    last = outcomes[1000]
    assert last is not None and not last.allowed and last.quota.scope == "shop"
    clock.now = 1000.0 + 3599.5
    refused = limiter.acquire("s", "u1")
    assert refused is not None and not refused.allowed and refused.retry_after == 1
    clock.now = 1000.0 + 3600.0
    allowed = limiter.acquire("s", "u1")
    assert allowed is not None and allowed.allowed
    assert RateLimiter(0, 0).acquire("s", "u") is None


def test_seed_environment_names() -> None:
    config = load_config(environ={"EDGE_RATE_LIMIT_USER_PER_MIN": "7", "EDGE_RATE_LIMIT_SHOP_PER_HOUR": "0"})
    assert (config.rate_limit.user_per_minute, config.rate_limit.shop_per_hour) == (7, 0)
    defaults = load_config(environ={}).rate_limit
    assert (defaults.user_per_minute, defaults.shop_per_hour) == (100, 1000)
