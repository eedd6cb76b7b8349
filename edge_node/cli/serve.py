"""`edge-node serve`: run the API and workers until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from edge_node.app import create_app
from edge_node.auth import load_or_create_secret
from edge_node.config import EdgeConfig

_LOGGER = logging.getLogger(__name__)


def serve(config: EdgeConfig) -> int:
    """Start serving; aiohttp turns SIGTERM into a graceful shutdown (cleanup_ctx stops the workers)."""
    _secret, generated = load_or_create_secret(config.auth.jwt_secret, config.storage.data_dir)
    if generated:
        _LOGGER.warning(
            "no EDGE_JWT_SECRET set: generated one in %s/keys/jwt.secret. Mint a token for a tablet with: "
            "edge-node token --data-dir %s --user-id clerk1",
            config.storage.data_dir, config.storage.data_dir,
        )
    app = create_app(config)
    _LOGGER.info("serving shop %s on http://%s:%d", config.auth.shop_id, config.server.host, config.server.port)
    web.run_app(app, host=config.server.host, port=config.server.port, print=None, access_log=None,
                shutdown_timeout=config.worker.processing_timeout_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(serve(EdgeConfig()))
