"""The model registry over HTTP: what nodes download and what scripts read.

- `GET /api/v1/models`: stored bundles and active rollouts (those reaching the token's shop for a shop token, or
  `?shop_id=` for an operator), with node reports; the same document as `central-sync models list --json`.
- `GET /api/v1/models/{name}/{version}/bundle.tar` (shared_models.model_updates.BUNDLE_PATH_TEMPLATE): the stored
  tar as a FileResponse, which answers Range (206), If-Range and HEAD itself, so nodes resume interrupted
  downloads. The sha256 nodes check is announced; it is also sent as `X-Bundle-SHA256`.

Both need a bearer token signed with `dashboard.jwt_secret` (central_sync/dashboard/auth.py). Any valid token may
download: bundles are signed, not secret, and nodes hold shop-scoped or operator tokens alike. Failures are the
envelope {success: false, error: {code, message}}: 401 without a valid token, 404 for an unknown bundle.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from central_sync.bundle_check import safe_segment
from central_sync.dashboard.auth import Viewer, viewer_from_header
from central_sync.dashboard.errors import DashboardError
from central_sync.errors import BundleInvalidError, BundleNotFoundError, DatabaseError
from central_sync.keys import CONFIG, ENGINE
from central_sync.registry import Registry

_LOGGER = logging.getLogger(__name__)

PREFIX = "/api/v1/models"
#: A stored tar never changes (versions are immutable); clients may keep it, but only privately (it needs a token).
CACHE_CONTROL = "private, max-age=86400, immutable"

Handler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]


def _registry(request: web.Request) -> Registry:
    return Registry(request.config_dict[CONFIG], request.config_dict[ENGINE])


def _guarded(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Authenticate the bearer token, and answer every refusal as an envelope."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            config = request.config_dict[CONFIG].dashboard
            viewer = viewer_from_header(request.headers.get("Authorization", ""), config)
            return await handler(request, viewer)
        except DashboardError as err:
            return web.json_response(err.body(), status=err.status)
        except DatabaseError as err:
            _LOGGER.warning("model registry request %s failed: %s", request.path, err.message)
            error = DashboardError(503, "SERVICE_UNAVAILABLE", "the database is not answering; try again")
            return web.json_response(error.body(), status=503)

    guarded.__doc__ = handler.__doc__
    return guarded


async def list_models(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """GET /api/v1/models: bundles and active rollouts."""
    shops = viewer.shops(request.query.get("shop_id") or None)
    overview = await _registry(request).overview(shops=shops)
    return web.json_response({"success": True, "data": {"shops": shops, **overview.as_json()}})


async def download(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """GET /api/v1/models/{name}/{version}/bundle.tar: the stored tar (Range supported)."""
    name, version = request.match_info["name"], request.match_info["version"]
    registry = _registry(request)
    try:
        safe_segment(name, "model name")
        safe_segment(version, "model version")
        bundle = await registry.bundle(name, version)
    except (BundleInvalidError, BundleNotFoundError) as err:
        raise DashboardError(404, "NOT_FOUND", f"no bundle {name} {version} is stored") from err
    path = registry.archive_path(bundle)
    if not path.is_file():
        _LOGGER.error("the tar of %s %s is recorded but missing at %s: upload the bundle again", name, version, path)
        raise DashboardError(404, "NOT_FOUND", f"the tar of {name} {version} is missing on this server")
    _LOGGER.info("%s downloads %s %s (%s)", viewer.user_id, name, version, request.headers.get("Range", "whole"))
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/x-tar",
            "Cache-Control": CACHE_CONTROL,
            "X-Bundle-SHA256": bundle.archive_sha256,
        },
    )


def setup_models_api(app: web.Application) -> None:
    """Mount the registry routes on the central app."""
    app.router.add_get(PREFIX, _guarded(list_models))
    app.router.add_get(PREFIX + "/{name}/{version}/bundle.tar", _guarded(download))
