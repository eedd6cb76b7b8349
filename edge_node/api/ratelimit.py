"""Request quotas of the OCR endpoints: a sliding-window log per user (per minute) and per shop (per hour).

Exact, not approximate: with a limit of N per window of W seconds the N-th request within any W seconds passes
and the (N+1)-th gets 429 QUOTA_EXCEEDED with Retry-After. A refused request does not count. Every response of
a limited endpoint carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` for the
tighter of the two quotas; Reset is in seconds until the oldest counted request leaves the window (a slot frees
up; on a 429 it equals Retry-After).
State is in memory: one node serves one shop, and a restart forgetting the window is harmless. A limit of 0
disables it (benchmarks).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from edge_node.api.middlewares import PRINCIPAL
from edge_node.config import RateLimitConfig
from edge_node.errors import QuotaExceededError

#: The limited endpoints; health, the OpenAPI document, metrics and the static pages are exempt.
LIMITED_PREFIX = "/api/v1/ocr/"
USER_WINDOW_SECONDS = 60.0
SHOP_WINDOW_SECONDS = 3600.0
#: Past this many tracked keys, idle ones are swept so that many one-off user ids cannot grow memory.
SWEEP_ABOVE_KEYS = 10_000

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Quota:
    """Where one window stands for one key."""

    scope: str
    limit: int
    window_seconds: float
    used: int
    reset_seconds: float  # until the oldest counted request leaves the window (0 when none is counted)

    @property
    def remaining(self) -> int:
        """Requests still allowed in the window."""
        return max(0, self.limit - self.used)


class SlidingWindow:
    """Timestamps of the requests of each key within the last `window_seconds`."""

    def __init__(self, scope: str, limit: int, window_seconds: float) -> None:
        self.scope = scope
        self.limit = limit
        self.window_seconds = window_seconds
        self._log: dict[Hashable, deque[float]] = {}

    def quota(self, key: Hashable, now: float) -> Quota:
        """Drop what left the window and report the rest."""
        log = self._log.get(key)
        if log is not None:
            while log and log[0] <= now - self.window_seconds:
                log.popleft()
            if not log:
                del self._log[key]
                log = None
        used = len(log) if log else 0
        reset = log[0] + self.window_seconds - now if log else 0.0
        return Quota(self.scope, self.limit, self.window_seconds, used, reset)

    def record(self, key: Hashable, now: float) -> None:
        """Count one request."""
        self._log.setdefault(key, deque()).append(now)
        if len(self._log) > SWEEP_ABOVE_KEYS:
            for idle in [k for k, log in self._log.items() if not log or log[-1] <= now - self.window_seconds]:
                del self._log[idle]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one request: allowed or not, and the quota to report (the tighter one)."""

    allowed: bool
    quota: Quota

    @property
    def retry_after(self) -> int:
        """Whole seconds until the refused request could pass (at least 1)."""
        return max(1, math.ceil(self.quota.reset_seconds))

    def headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers."""
        return {
            "X-RateLimit-Limit": str(self.quota.limit),
            "X-RateLimit-Remaining": str(self.quota.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.quota.reset_seconds)),
        }


class RateLimiter:
    """Both quotas of a request; `clock` is monotonic seconds (tests pass a fake one)."""

    def __init__(self, user_per_minute: int, shop_per_hour: int, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._windows: list[tuple[SlidingWindow, bool]] = [
            (SlidingWindow("user", user_per_minute, USER_WINDOW_SECONDS), True),
            (SlidingWindow("shop", shop_per_hour, SHOP_WINDOW_SECONDS), False),
        ]
        self._windows = [(window, per_user) for window, per_user in self._windows if window.limit > 0]

    @property
    def enabled(self) -> bool:
        """False when both limits are 0."""
        return bool(self._windows)

    def acquire(self, shop_id: str, user_id: str) -> Decision | None:
        """Count the request if every quota allows it; None when no limit is configured."""
        if not self._windows:
            return None
        now = self.clock()
        keyed = [(window, (shop_id, user_id) if per_user else shop_id) for window, per_user in self._windows]
        quotas = [window.quota(key, now) for window, key in keyed]
        exhausted = [quota for quota in quotas if quota.remaining == 0]
        if exhausted:
            return Decision(False, max(exhausted, key=lambda q: q.reset_seconds))
        for window, key in keyed:
            window.record(key, now)
        after = [window.quota(key, now) for window, key in keyed]
        return Decision(True, min(after, key=lambda q: (q.remaining, q.limit)))


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
RATE_HEADERS = web.RequestKey("rate_limit_headers", dict)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count authenticated requests to the OCR endpoints; 429 past a quota. Runs after the auth middleware."""
    limiter = request.app.get(RATE_LIMITER)
    principal = request.get(PRINCIPAL)
    if limiter is None or principal is None or not request.path.startswith(LIMITED_PREFIX):
        return await handler(request)
    decision = limiter.acquire(principal.shop_id, principal.user_id)
    if decision is None:
        return await handler(request)
    request[RATE_HEADERS] = decision.headers()
    if not decision.allowed:
        quota = decision.quota
        raise QuotaExceededError(
            f"rate limit reached: {quota.limit} requests per {quota.window_seconds:g} s for this {quota.scope}; "
            f"try again in {decision.retry_after} s",
            retry_after=decision.retry_after,
            details={"scope": quota.scope, "limit": quota.limit, "window_seconds": quota.window_seconds},
        )
    return await handler(request)


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response of a limited request, success or error (including the 429), gets the headers."""
    headers = request.get(RATE_HEADERS)
    if headers:
        response.headers.update(headers)


def setup_rate_limits(app: web.Application, config: RateLimitConfig, clock: Clock = time.monotonic) -> None:
    """Install the limiter (nothing when both limits are 0); the middleware itself is in the app's list."""
    limiter = RateLimiter(config.user_per_minute, config.shop_per_hour, clock)
    if limiter.enabled:
        app[RATE_LIMITER] = limiter
        app.on_response_prepare.append(_add_headers)
