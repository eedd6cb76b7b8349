"""Request quotas, pure: a sliding-window log per user (per minute) and per shop (per hour).

Used by the edge node's OCR endpoints (edge_node/api/ratelimit.py) and the central service's API
(central_sync/ratelimit.py); each wraps it in its own aiohttp middleware and error type. Standard library only,
no I/O: time comes from a `clock` the caller passes (monotonic seconds; tests pass a fake one).

Exact, not approximate: with a limit of N per window of W seconds the N-th request within any W seconds passes
and the (N+1)-th is refused. A refused request does not count. `Decision.headers()` gives `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` for the tighter of the quotas; Reset is in seconds until the
oldest counted request leaves the window (a slot frees up; on a refusal it equals `retry_after`).
State is in memory. A limit of 0 disables that quota.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

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

    def __len__(self) -> int:
        """Keys tracked now (idle ones included until swept)."""
        return len(self._log)

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

    def message(self) -> str:
        """What a refusal tells the caller."""
        quota = self.quota
        return (
            f"rate limit reached: {quota.limit} requests per {quota.window_seconds:g} s for this {quota.scope}; "
            f"try again in {self.retry_after} s"
        )

    def details(self) -> dict[str, Any]:
        """The refused quota, for the error envelope's `details`."""
        return {"scope": self.quota.scope, "limit": self.quota.limit, "window_seconds": self.quota.window_seconds}


class RateLimiter:
    """Both quotas of a request: per user (per minute) and per shop (per hour)."""

    def __init__(self, user_per_minute: int, shop_per_hour: int, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        windows = [
            (SlidingWindow("user", user_per_minute, USER_WINDOW_SECONDS), True),
            (SlidingWindow("shop", shop_per_hour, SHOP_WINDOW_SECONDS), False),
        ]
        self._windows = [(window, per_user) for window, per_user in windows if window.limit > 0]

    @property
    def enabled(self) -> bool:
        """False when both limits are 0."""
        return bool(self._windows)

    def tracked_keys(self) -> int:
        """Keys held in memory over all windows (for tests and metrics)."""
        return sum(len(window) for window, _per_user in self._windows)

    def acquire(self, shop_id: str | None, user_id: str) -> Decision | None:
        """Count the request if every quota allows it; None when no limit applies.

        A caller without a shop (`shop_id` None: a central operator) has only the per-user quota.
        """
        keyed = [
            (window, (shop_id, user_id) if per_user else shop_id)
            for window, per_user in self._windows
            if per_user or shop_id is not None
        ]
        if not keyed:
            return None
        now = self.clock()
        quotas = [window.quota(key, now) for window, key in keyed]
        exhausted = [quota for quota in quotas if quota.remaining == 0]
        if exhausted:
            return Decision(False, max(exhausted, key=lambda q: q.reset_seconds))
        for window, key in keyed:
            window.record(key, now)
        after = [window.quota(key, now) for window, key in keyed]
        return Decision(True, min(after, key=lambda q: (q.remaining, q.limit)))
