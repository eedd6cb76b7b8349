"""The scan page served by the node to the shop's tablets: `/` (index.html) and its files under `/static/`.

Plain HTML, CSS and JavaScript shipped in the package: no build step, no CDN, so it works on a LAN with no internet.
Both paths are public (the page holds no data); the page sends the clerk's token with every API call.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
#: Only our own files may run or load; the API and WebSocket are on the same origin; photos preview as blob: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


async def index(request: web.Request) -> web.FileResponse:
    """GET /: the scan page (revalidated on each load so an updated node serves the new page at once)."""
    return web.FileResponse(
        WEB_DIR / "index.html",
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def setup_web(app: web.Application) -> None:
    """Register the page and its static files."""
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
