"""The shared pure limiter (shared_models/ratelimit.py) that the node and central both wrap: exact sliding
windows, refusals not counted, the tighter quota reported, callers without a shop, 0 disables, idle keys swept."""

from __future__ import annotations

from shared_models import ratelimit
from shared_models.ratelimit import RateLimiter


class FakeClock:
    """Monotonic seconds that only move when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_window_slides_exactly_and_refusals_do_not_count() -> None:
    clock = FakeClock()
    limiter = RateLimiter(user_per_minute=2, shop_per_hour=0, clock=clock)
    assert [limiter.acquire("s", "u").allowed for _ in range(2)] == [True, True]  # type: ignore[union-attr]
    clock.now = 130.0
    refused = limiter.acquire("s", "u")
    assert refused is not None and not refused.allowed
    assert refused.retry_after == 30 and refused.headers() == {
        "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
    assert refused.message() == "rate limit reached: 2 requests per 60 s for this user; try again in 30 s"
    assert refused.details() == {"scope": "user", "limit": 2, "window_seconds": 60.0}
    clock.now = 159.999
    assert not limiter.acquire("s", "u").allowed  # type: ignore[union-attr]
    clock.now = 160.0  # both first requests are exactly 60 s old: gone (the refusals never counted)
    allowed = limiter.acquire("s", "u")
    assert allowed is not None and allowed.allowed and allowed.quota.remaining == 1


def test_the_tighter_quota_is_reported_and_a_shopless_caller_has_only_the_user_quota() -> None:
    clock = FakeClock()
    limiter = RateLimiter(user_per_minute=10, shop_per_hour=3, clock=clock)
    first = limiter.acquire("shop-1", "ana")
    assert first is not None and (first.quota.scope, first.quota.remaining) == ("shop", 2)
    limiter.acquire("shop-1", "bo")
    limiter.acquire("shop-1", "cy")
    refused = limiter.acquire("shop-1", "dee")
    assert refused is not None and not refused.allowed and refused.quota.scope == "shop"
    assert refused.retry_after == 3600
    operator = limiter.acquire(None, "op")
    assert operator is not None and operator.allowed and operator.quota.scope == "user"
    assert operator.quota.remaining == 9
    # Users are keyed within their shop: the same id in another shop is another user.
    assert limiter.acquire("shop-2", "ana").allowed  # type: ignore[union-attr]


def test_zero_disables_a_quota_and_both_zero_disables_the_limiter() -> None:
    assert not RateLimiter(0, 0).enabled and RateLimiter(0, 0).acquire("s", "u") is None
    shop_only = RateLimiter(user_per_minute=0, shop_per_hour=5)
    assert shop_only.acquire(None, "op") is None  # no quota applies to a caller without a shop
    decision = shop_only.acquire("s", "u")
    assert decision is not None and decision.quota.scope == "shop"


def test_idle_keys_are_swept_past_the_threshold(monkeypatch) -> None:
    monkeypatch.setattr(ratelimit, "SWEEP_ABOVE_KEYS", 50)
    clock = FakeClock()
    limiter = RateLimiter(user_per_minute=5, shop_per_hour=0, clock=clock)
    for number in range(50):
        limiter.acquire("s", f"one-off-{number}")
    assert limiter.tracked_keys() == 50
    clock.now += 61  # every one of them is idle now
    limiter.acquire("s", "newcomer")
    assert limiter.tracked_keys() == 1
