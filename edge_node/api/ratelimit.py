"""Request quotas of the OCR endpoints: 100/min per user and 1000/h per shop by default (DESIGN §7).

The counting is the shared, pure sliding-window limiter (shared_models/ratelimit.py: exact windows, a refused
request does not count, 0 disables a limit); this module is its aiohttp side on the node. Past a quota the
answer is 429 QUOTA_EXCEEDED with Retry-After; every response of a limited endpoint carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` for the tighter of the two quotas.
State is in memory: one node serves one shop, and a restart forgetting the window is harmless.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from edge_node.api.middlewares import PRINCIPAL
from edge_node.config import RateLimitConfig
from edge_node.errors import QuotaExceededError
from shared_models.ratelimit import Clock, RateLimiter

__all__ = ["LIMITED_PREFIX", "RATE_LIMITER", "RateLimiter", "rate_limit_middleware", "setup_rate_limits"]

#: The limited endpoints; health, the OpenAPI document, metrics and the static pages are exempt.
LIMITED_PREFIX = "/api/v1/ocr/"

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
        raise QuotaExceededError(decision.message(), retry_after=decision.retry_after, details=decision.details())
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
