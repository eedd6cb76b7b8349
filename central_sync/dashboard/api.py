"""The dashboard's JSON API, one endpoint per view, mounted as a sub-application at /api/v1/dashboard.

Every endpoint takes `shop_id`, and a time range as `from`/`to` (ISO 8601; UTC when no offset is given) or
`hours` (the last N hours; default 24), and answers the envelope {success, data | error}. The sub-application's
middleware checks the bearer token (see auth.py) and turns failures into envelopes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from central_sync.dashboard import queries
from central_sync.dashboard.auth import Viewer, viewer_from_header
from central_sync.dashboard.errors import DashboardError
from central_sync.errors import DatabaseError
from central_sync.keys import CONFIG, ENGINE
from central_sync.registry import Registry

_LOGGER = logging.getLogger(__name__)

VIEWER = web.RequestKey("dashboard_viewer", Viewer)
DEFAULT_HOURS = 24

Query = Callable[[AsyncConnection, queries.Scope], Awaitable[Any]]


def _parse_time(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise DashboardError(400, "VALIDATION_ERROR", f"{name} must be an ISO 8601 time") from err
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def scope_of(request: web.Request) -> queries.Scope:
    """The shops and time range a request asks for, checked against what its viewer may see."""
    config = request.config_dict[CONFIG].dashboard
    viewer = request[VIEWER]
    query = request.query
    end = _parse_time("to", query["to"]) if "to" in query else datetime.now(UTC)
    if "from" in query:
        start = _parse_time("from", query["from"])
    else:
        try:
            hours = float(query.get("hours", DEFAULT_HOURS))
        except ValueError as err:
            raise DashboardError(400, "VALIDATION_ERROR", "hours must be a number") from err
        if not 0 < hours <= config.max_range_days * 24:
            raise DashboardError(400, "VALIDATION_ERROR", f"hours must be between 0 and {config.max_range_days * 24}")
        start = end - timedelta(hours=hours)
    if start >= end:
        raise DashboardError(400, "VALIDATION_ERROR", "from must be before to")
    if end - start > timedelta(days=config.max_range_days):
        raise DashboardError(400, "VALIDATION_ERROR", f"the range may cover at most {config.max_range_days} days")
    shop = query.get("shop_id") or None
    return queries.Scope(shops=viewer.shops(shop), start=start, end=end)


async def _run(request: web.Request, query: Query) -> tuple[queries.Scope, Any]:
    scope = scope_of(request)
    try:
        async with request.config_dict[ENGINE].connect() as conn:
            return scope, await query(conn, scope)
    except (SQLAlchemyError, OSError, TimeoutError) as err:
        _LOGGER.warning("dashboard query failed: %s", err)
        raise DashboardError(503, "SERVICE_UNAVAILABLE", "the database is not answering; try again") from err


def _ok(scope: queries.Scope, key: str, value: Any, **extra: Any) -> web.Response:
    data = {
        "range": {"from": scope.start.isoformat(), "to": scope.end.isoformat()},
        "shops": scope.shops,
        key: value,
        **extra,
    }
    return web.json_response({"success": True, "data": data})


def _view(key: str, query: Query) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        scope, value = await _run(request, query)
        return _ok(scope, key, value)

    handler.__doc__ = f"GET /api/v1/dashboard/{key}"
    return handler


async def series(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/dashboard/jobs_per_hour: jobs per hour (per day beyond a week) and shop."""
    scope, value = await _run(request, queries.job_series)
    return _ok(scope, "series", value, bucket=scope.bucket)


async def rollouts(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/dashboard/rollouts: the active model rollouts that reach the scope's shops (all and percent
    rollouts reach every shop), with the nodes running each and a shadow model's agreement."""
    scope = scope_of(request)
    registry = Registry(request.config_dict[CONFIG], request.config_dict[ENGINE])
    try:
        overview = await registry.overview(shops=scope.shops)
    except DatabaseError as err:
        _LOGGER.warning("dashboard rollouts query failed: %s", err.message)
        raise DashboardError(503, "SERVICE_UNAVAILABLE", "the database is not answering; try again") from err
    active = overview.as_json()["rollouts"]
    summary = f"{len(active)} active (revision {overview.revision})" if active else "none"
    return _ok(scope, "rollouts", {"active": active, "summary": summary, "registry": True,
                                   "revision": overview.revision})


async def me(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/dashboard/me: who the token says the caller is, and what it may see."""
    viewer = request[VIEWER]
    data = {"user_id": viewer.user_id, "role": viewer.role, "shop_id": viewer.shop_id, "all_shops": viewer.sees_all}
    return web.json_response({"success": True, "data": data})


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, and answer every failure as an envelope."""
    try:
        config = request.config_dict[CONFIG].dashboard
        request[VIEWER] = viewer_from_header(request.headers.get("Authorization", ""), config)
        return await handler(request)
    except DashboardError as err:
        return web.json_response(err.body(), status=err.status)
    except web.HTTPNotFound:
        return web.json_response(DashboardError(404, "NOT_FOUND", f"no such view: {request.path}").body(), status=404)
    except web.HTTPException:
        raise
    except Exception:
        _LOGGER.exception("dashboard request %s failed", request.path)
        return web.json_response(DashboardError(500, "INTERNAL_ERROR", "internal error; it has been logged").body(),
                                 status=500)


def api_app() -> web.Application:
    """The sub-application; its state (config, engine) is read from the parent through config_dict."""
    app = web.Application(middlewares=[_guard])
    app.router.add_get("/me", me)
    app.router.add_get("/summary", _view("summary", queries.summary))
    app.router.add_get("/shops", _view("shops", queries.shops))
    app.router.add_get("/nodes", _view("nodes", queries.node_list))
    app.router.add_get("/jobs_per_hour", series)
    app.router.add_get("/errors", _view("errors", queries.errors))
    app.router.add_get("/accuracy", _view("accuracy", queries.accuracy))
    app.router.add_get("/rollouts", rollouts)
    return app
