"""Real aiohttp servers on loopback ports for the browser tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

#: Seconds a test server waits for open connections when it stops.
SHUTDOWN_SECONDS = 1.0


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run an aiohttp application on a free loopback port; yields its base URL.

    The page's WebSocket stays open until the browser goes; a short shutdown timeout stops the server from
    waiting for it (aiohttp waits up to 60 s for open handlers by default).
    """
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
