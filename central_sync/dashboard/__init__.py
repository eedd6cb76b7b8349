"""The central dashboard: a static page at /dashboard/ and its JSON API at /api/v1/dashboard/.

The page (static/: index.html, dashboard.js, dashboard.css; charts drawn as inline SVG, nothing fetched from
outside) holds no data and is public; the API behind every view needs a bearer token (see auth.py).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from central_sync.dashboard.api import api_app

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_PREFIX = "/api/v1/dashboard"
PAGE_PREFIX = "/dashboard"
#: Only the page's own files may load; its API is on the same origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def page(request: web.Request) -> web.FileResponse:
    """GET /dashboard/: the page."""
    return web.FileResponse(
        STATIC_DIR / "index.html",
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


async def _to_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{PAGE_PREFIX}/")


def setup_dashboard(app: web.Application) -> None:
    """Mount the API sub-application and the page's routes."""
    app.add_subapp(API_PREFIX, api_app())
    app.router.add_get(PAGE_PREFIX, _to_page)
    app.router.add_get(f"{PAGE_PREFIX}/", page)
    app.router.add_static(f"{PAGE_PREFIX}/static/", STATIC_DIR, append_version=False)
