"""create_app(config): the aiohttp application with its state, routes and background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from aiohttp import web

from edge_node import keys
from edge_node.api.cors import cors_middleware, setup_cors
from edge_node.api.health import STORAGE_PROBE
from edge_node.api.middlewares import auth_middleware, error_middleware
from edge_node.api.ratelimit import rate_limit_middleware, setup_rate_limits
from edge_node.api.routes import setup_routes
from edge_node.api.ws import EventHub
from edge_node.auth import build_verifier, load_or_create_secret
from edge_node.config import EdgeConfig, StorageConfig
from edge_node.engines.registry import EngineSet, build_engines
from edge_node.errors import ServiceUnavailableError
from edge_node.models.manager import ModelManager
from edge_node.store import audit, retention
from edge_node.store import cache as result_cache
from edge_node.store.db import Database
from edge_node.store.images import ImageVault, load_key, load_or_create_key
from edge_node.store.probe import StorageProbe
from edge_node.sync.models import subscribe_model_updates
from edge_node.sync.outbox import OutboxPublisher
from edge_node.worker import JobQueue

_LOGGER = logging.getLogger(__name__)

#: Multipart overhead allowed on top of the image bytes of a full batch.
BODY_SLACK_BYTES = 1_000_000


def create_app(config: EdgeConfig, engines: EngineSet | None = None) -> web.Application:
    """Build the node; `engines` may be passed in to share loaded models (tests, benchmarks)."""
    max_body = int(config.limits.max_image_size_mb * 1_000_000 * config.limits.max_batch_images) + BODY_SLACK_BYTES
    # Order matters: errors become envelopes outermost; preflights are answered before auth; quotas need the caller.
    app = web.Application(
        middlewares=[error_middleware, cors_middleware, auth_middleware, rate_limit_middleware],
        client_max_size=max_body,
    )
    app[keys.CONFIG] = config
    app[keys.STARTED_AT] = time.monotonic()
    secret, _generated = load_or_create_secret(config.auth.jwt_secret, config.storage.data_dir)
    app[keys.VERIFIER] = build_verifier(config.auth, secret)
    app[keys.EVENTS] = EventHub()
    app.on_shutdown.append(app[keys.EVENTS].close_all)
    setup_cors(app, config.server.cors_origins)
    setup_rate_limits(app, config.rate_limit)
    app[STORAGE_PROBE] = StorageProbe(config.storage.data_dir, config.storage.database_path)
    setup_routes(app)

    async def state(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        db = await loop.run_in_executor(None, Database, config.storage.database_path)
        app[keys.DATABASE] = db
        app[keys.ENGINES] = engines if engines is not None else await loop.run_in_executor(
            None, build_engines, config.ocr
        )
        vault = await loop.run_in_executor(None, _build_vault, config)
        app[keys.VAULT] = vault
        queue = JobQueue(config, db, app[keys.ENGINES], vault)
        app[keys.QUEUE] = queue
        queue.add_listener(app[keys.EVENTS].publish)
        manager = None
        if config.models.updates:  # before the queue starts, so the first job already meets the installed model
            manager = ModelManager(config, db, app[keys.ENGINES])
            await manager.start()
            app[keys.MODELS] = manager
        await queue.start()
        publisher = None
        if config.sync.enabled:
            publisher = OutboxPublisher(config.sync, config.node.node_id, config.auth.shop_id, db)
            queue.add_listener(publisher.job_event)
            if manager is not None:
                publisher.model_versions = manager.model_versions
                manager.on_change = publisher.refresh_status
                subscribe_model_updates(publisher.link, config.auth.shop_id, config.node.node_id, manager.receive)
            app[keys.SYNC] = publisher
            await publisher.start()
        retention = asyncio.create_task(
            _purge_periodically(db, vault, config.storage),
            name="image-retention",
        )
        yield
        retention.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retention
        if manager is not None:
            await manager.stop()
        if publisher is not None:
            await publisher.stop()
        await queue.stop(grace_seconds=config.worker.processing_timeout_seconds)
        db.close()

    app.cleanup_ctx.append(state)
    return app


def _build_vault(config: EdgeConfig) -> ImageVault:
    """The image vault with the current key and the retired ones (for reading and lazy re-encryption)."""
    storage = config.storage
    key = load_or_create_key(storage.key_path)
    old_keys = [load_key(path) for path in storage.image_old_key_files]
    return ImageVault(storage.data_dir / "images", key, storage.retention_days, old_keys, store=storage.store_images)


async def _purge_periodically(db: Database, vault: ImageVault, storage: StorageConfig) -> None:
    """At start-up and then every `purge_interval_seconds`: finished jobs past job retention, images past
    retention (and the images of purged jobs), audit rows past audit retention, expired cache rows. A failing
    disk is logged and tried again next time."""
    while True:
        now = datetime.now(UTC)
        steps: list[tuple[str, Callable[[sqlite3.Connection], int]]] = [
            ("finished jobs older than the job retention",
             partial(retention.purge_finished_jobs, cutoff=now - timedelta(days=storage.job_retention_days))),
            ("images past retention", vault.purge_expired),
            ("image audit rows older than the audit retention",
             partial(audit.purge_older_than, cutoff=now - timedelta(days=storage.audit_retention_days))),
            ("expired result-cache rows", result_cache.purge_expired),
        ]
        for what, step in steps:
            try:
                purged = await db.run(step)
            except (ServiceUnavailableError, OSError) as err:
                _LOGGER.warning("retention purge of %s failed: %s", what, err)
            else:
                if purged:
                    _LOGGER.info("purged %d %s", purged, what)
        await asyncio.sleep(storage.purge_interval_seconds)
