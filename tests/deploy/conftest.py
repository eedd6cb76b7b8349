"""A real edge node for the deployment tests: the app of edge_node.app on a loopback port, in a thread of its own.

No OCR runs here, so the engines are a stub: the tests only use the health and metrics endpoints (what probes,
healthchecks and Prometheus call), and those must answer exactly as in a deployment.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from tests.deploy.deploy_support import RunningEdge
from tests.services import free_port

SHOP = "shop-deploy"
SECRET = "deploy-test-secret-long-enough-for-hs256-signing"


@pytest.fixture(scope="session")
def running_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEdge]:
    """The edge app serving on a free port until the end of the session."""
    from edge_node.app import create_app
    from edge_node.auth import issue_token
    from edge_node.config import load_config
    from edge_node.engines.registry import EngineSet

    data_dir = tmp_path_factory.mktemp("edge-deploy") / "data"
    config = load_config(environ={
        "EDGE_STORAGE__DATA_DIR": str(data_dir), "EDGE_JWT_SECRET": SECRET, "EDGE_SHOP_ID": SHOP,
        "EDGE_WORKER__WORKERS": "1",
    })
    engines = EngineSet(detector=object(), recognizers={}, primary={}, fallback=None)  # type: ignore[arg-type]
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(config, engines))
    started = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        except BaseException as err:  # reported to the fixture below
            failure.append(err)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="deploy-edge", daemon=True)
    thread.start()
    assert started.wait(60), "the edge app did not start"
    if failure:
        raise failure[0]
    token = issue_token(SECRET, user_id="prometheus", shop_id=SHOP, ttl_seconds=600, role="admin")
    try:
        yield RunningEdge(port, token, data_dir)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
