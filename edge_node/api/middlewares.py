"""Middlewares: every error becomes an envelope (never a bare 500 with a trace), and every route but the
public ones needs a valid token of this node's shop; `admin_of` / `admin_only` guard the admin routes."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from edge_node import keys
from edge_node.api.envelope import failure
from edge_node.auth import Principal
from edge_node.errors import (
    EdgeError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    UnauthorizedError,
    ValidationFailedError,
)

_LOGGER = logging.getLogger(__name__)

PRINCIPAL = web.RequestKey("principal", Principal)
#: Paths served without a token: probes, the API description, and the static scan page.
PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/openapi.json", "/health"})
PUBLIC_PREFIXES = ("/static/",)
#: The one path where a missing token is allowed on the upgrade (it then comes as the first message).
WEBSOCKET_PATH = "/api/v1/ocr/ws"


def principal_of(request: web.Request) -> Principal:
    """The caller, as set by the auth middleware."""
    principal = request.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise UnauthorizedError("authentication required")
    return principal


def admin_of(request: web.Request) -> Principal:
    """The caller, who must have the `admin` role (403 otherwise)."""
    principal = principal_of(request)
    if not principal.is_admin:
        raise ForbiddenError("this needs the admin role", details={"role": principal.role})
    return principal


def admin_only(handler: Handler) -> Handler:
    """Wrap a handler so that only admins reach it (used in the route table)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        admin_of(request)
        return await handler(request)

    guarded.__doc__ = handler.__doc__
    return guarded


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate errors at the boundary."""
    try:
        return await handler(request)
    except EdgeError as err:
        if err.status >= 500:
            _LOGGER.warning("%s %s -> %s: %s", request.method, request.path, err.code.value, err.message)
        return failure(err)
    except web.HTTPRequestEntityTooLarge:
        return failure(PayloadTooLargeError("the request body is too large"))
    except web.HTTPNotFound:
        return failure(NotFoundError(f"no such endpoint: {request.path}"))
    except web.HTTPMethodNotAllowed as err:
        return failure(
            ValidationFailedError(f"{request.method} is not allowed here", status=405,
                                  details={"allowed": sorted(err.allowed_methods)})
        )
    except web.HTTPException:
        raise
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return failure(EdgeError("the node hit an internal error; it has been logged"))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require `Authorization: Bearer <jwt>` (or `?token=` for WebSocket upgrades) outside the public paths."""
    path = request.path
    if path in PUBLIC_PATHS or path == "/" or path.startswith(PUBLIC_PREFIXES) or request.method == "OPTIONS":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        token = request.query.get("token", "") if websocket else ""
        if not token:
            if websocket and path == WEBSOCKET_PATH:  # the handler takes the token as its first message
                return await handler(request)
            raise UnauthorizedError("missing bearer token: send 'Authorization: Bearer <token>'")
    request[PRINCIPAL] = request.app[keys.VERIFIER].verify(token.strip())
    return await handler(request)
