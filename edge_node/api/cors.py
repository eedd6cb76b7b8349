"""CORS for browser apps on other origins (a web POS): an exact allow-list from `server.cors_origins`.

A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here, before auth, with the
allowed methods and headers, or 403 FORBIDDEN for an origin, method or header outside the list. Responses to
allowed origins echo that origin (never `*`, which browsers refuse together with credentials) with
`Vary: Origin`, and expose the rate-limit headers. The node's own pages are same-origin and need none of this.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from edge_node.errors import ForbiddenError

#: What the API uses: reads, uploads, and the admin's job deletion.
ALLOWED_METHODS = ("GET", "POST", "DELETE")
#: Request headers a browser app may send (Content-Type covers multipart uploads).
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Accept")
#: Response headers a browser app may read besides the safelisted ones.
EXPOSED_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
#: Browsers cache a preflight this long: saves a round trip per upload, short enough for a config change to land.
MAX_AGE_SECONDS = 600

CORS_ORIGINS = web.AppKey("cors_origins", frozenset)


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    origins: frozenset[str] = request.app.get(CORS_ORIGINS, frozenset())
    return origin if origin is not None and origin in origins else None


def _preflight(request: web.Request) -> web.Response:
    origin = _allowed_origin(request)
    if origin is None:
        raise ForbiddenError("this origin is not allowed (server.cors_origins)",
                             details={"origin": request.headers.get("Origin")})
    method = request.headers["Access-Control-Request-Method"].strip().upper()
    if method not in ALLOWED_METHODS:
        raise ForbiddenError(f"method {method} is not allowed", details={"allowed": list(ALLOWED_METHODS)})
    requested = {h.strip().lower() for h in request.headers.get("Access-Control-Request-Headers", "").split(",")}
    refused = sorted(requested - {h.lower() for h in ALLOWED_HEADERS} - {""})
    if refused:
        raise ForbiddenError(f"headers not allowed: {', '.join(refused)}", details={"allowed": list(ALLOWED_HEADERS)})
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": ", ".join(ALLOWED_METHODS),
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        },
    )


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights; other requests go on (the origin headers are added when the response is prepared)."""
    if request.method == "OPTIONS" and "Origin" in request.headers \
            and "Access-Control-Request-Method" in request.headers:
        return _preflight(request)
    return await handler(request)


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Allowed origins get their CORS headers on every response, errors included (so the app can read them)."""
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin"
    origin = _allowed_origin(request)
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    if request.method != "OPTIONS":
        response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)


def setup_cors(app: web.Application, origins: list[str]) -> None:
    """Keep the allow-list; with none configured, cross-origin preflights are refused and nothing is added."""
    app[CORS_ORIGINS] = frozenset(origins)
    if origins:
        app.on_response_prepare.append(_add_headers)
