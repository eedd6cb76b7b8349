"""Request quotas of the central service's authenticated HTTP API: per user (per minute) and per shop (per hour).

Applies to every path under /api/v1/ except /api/v1/health (probes): the dashboard API and whatever else is
mounted there. It runs as a middleware of the ROOT application, so before any sub-application's own auth; it
reads the caller from the bearer token with the dashboard's verification (dashboard/auth.py) and counts only
requests whose token verifies. A request without a valid token is not counted and goes on to be refused by the
endpoint itself (401/403/503), so an anonymous caller cannot use up a user's or a shop's quota.

Keys: the token's `sub` within its `shop_id` for the user quota, the `shop_id` for the shop quota. An operator
token (all shops, no `shop_id`) has the user quota only: it belongs to no shop, and querying one shop's figures
must not spend that shop's quota.

The counting is the shared pure limiter (shared_models/ratelimit.py, the same as the edge node's). Past a quota
the answer is 429 with the dashboard's error envelope `{success: false, error: {code: QUOTA_EXCEEDED, message,
details}}` and `Retry-After`; every counted response (success, error or 429) carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` for the tighter quota. State is per replica and in memory: with
N replicas behind a load balancer a caller gets up to N times the quota, which is fine for what it guards
against (a runaway script or a forgotten dashboard tab hammering PostgreSQL with aggregations).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from central_sync.config import RateLimitConfig
from central_sync.dashboard.auth import viewer_from_header
from central_sync.dashboard.errors import DashboardError
from central_sync.keys import CONFIG
from shared_models.ratelimit import Clock, RateLimiter

_LOGGER = logging.getLogger(__name__)

#: Counted paths start with this; EXEMPT_PATHS are never counted.
LIMITED_PREFIX = "/api/v1/"
EXEMPT_PATHS = frozenset({"/api/v1/health"})

RATE_LIMITER = web.AppKey("central_rate_limiter", RateLimiter)
RATE_HEADERS = web.RequestKey("central_rate_limit_headers", dict)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests of authenticated callers under /api/v1/ (not health); 429 QUOTA_EXCEEDED past a quota."""
    limiter = request.config_dict.get(RATE_LIMITER)
    path = request.path
    if limiter is None or not path.startswith(LIMITED_PREFIX) or path in EXEMPT_PATHS or request.method == "OPTIONS":
        return await handler(request)
    try:
        viewer = viewer_from_header(request.headers.get("Authorization", ""), request.config_dict[CONFIG].dashboard)
    except DashboardError:
        return await handler(request)  # not counted: the endpoint answers 401/403/503 itself
    decision = limiter.acquire(viewer.shop_id, viewer.user_id)
    if decision is None:
        return await handler(request)
    request[RATE_HEADERS] = decision.headers()
    if not decision.allowed:
        _LOGGER.info("rate limit: %s %s refused for user %s (shop %s): %s quota of %d",
                     request.method, path, viewer.user_id, viewer.shop_id, decision.quota.scope, decision.quota.limit)
        error = DashboardError(429, "QUOTA_EXCEEDED", decision.message(), details=decision.details())
        return web.json_response(error.body(), status=429, headers={"Retry-After": str(decision.retry_after)})
    return await handler(request)


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response of a counted request, from this app or a sub-application, gets the X-RateLimit-* headers."""
    headers = request.get(RATE_HEADERS)
    if headers:
        response.headers.update(headers)


def setup_rate_limits(app: web.Application, config: RateLimitConfig, clock: Clock = time.monotonic) -> None:
    """Install the limiter and its middleware on the root application (nothing when both limits are 0)."""
    limiter = RateLimiter(config.user_per_minute, config.shop_per_hour, clock)
    if not limiter.enabled:
        return
    app[RATE_LIMITER] = limiter
    app.middlewares.append(rate_limit_middleware)
    app.on_response_prepare.append(_add_headers)
