"""The central service as an aiohttp application: the ingest loop and the Kafka relay run as background tasks
(cleanup_ctx), and GET /api/v1/health reports the database, MQTT and Kafka state with the ingest counters.
The model registry's routes (central_sync/api_models.py) serve bundles to nodes, and every time the MQTT link
connects the current model announcement is published again, retained (central_sync/announce.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from central_sync import __version__
from central_sync.announce import Announcer
from central_sync.api_models import setup_models_api
from central_sync.config import CentralConfig
from central_sync.dashboard import setup_dashboard
from central_sync.db.engine import create_engine, ping
from central_sync.db.migrate import upgrade
from central_sync.db.models import kafka_outbox
from central_sync.ingest import Ingest
from central_sync.kafka import KafkaRelay
from central_sync.keys import ANNOUNCER, CONFIG, ENGINE, INGEST, RELAY, STARTED_AT
from central_sync.ratelimit import setup_rate_limits

_LOGGER = logging.getLogger(__name__)


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    if config.database.migrate_on_start:
        await upgrade(config.database.url)
    engine = create_engine(config.database)
    app[ENGINE] = engine
    yield
    await engine.dispose()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    relay = KafkaRelay(config.kafka, app[ENGINE], client_id=config.mqtt.client_id)
    ingest = Ingest(config, app[ENGINE], on_outbox=relay.wake)
    announcer = Announcer(app[ENGINE], ingest.link)  # before the link starts: it hears the first connection
    app[RELAY] = relay
    app[INGEST] = ingest
    app[ANNOUNCER] = announcer
    if config.kafka.enabled:
        await relay.start()
    await ingest.start()
    yield
    await announcer.stop()
    await ingest.stop()
    await relay.stop()


async def _pending_outbox(app: web.Application) -> int | None:
    try:
        async with app[ENGINE].connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(kafka_outbox).where(kafka_outbox.c.sent_at.is_(None))
            )
    except (SQLAlchemyError, OSError):
        return None
    return int(count or 0)


async def health(request: web.Request) -> web.Response:
    """GET /api/v1/health: healthy, degraded (MQTT or Kafka down) or unhealthy (database down; answers 503)."""
    app = request.app
    config = app[CONFIG]
    ingest, relay = app[INGEST], app[RELAY]
    db_ok = await ping(app[ENGINE])
    kafka_ok = relay.connected or not config.kafka.enabled
    status = "unhealthy" if not db_ok else "healthy" if ingest.link.connected and kafka_ok else "degraded"
    data: dict[str, Any] = {
        "status": status,
        "version": __version__,
        "uptime_seconds": round(time.monotonic() - app[STARTED_AT], 1),
        "database": {"connected": db_ok},
        "mqtt": {
            "connected": ingest.link.connected,
            "client_id": config.mqtt.client_id,
            "last_error": ingest.link.last_error,
        },
        "kafka": {
            "enabled": config.kafka.enabled,
            "connected": relay.connected,
            "pending_outbox": await _pending_outbox(app) if db_ok else None,
            "sent": relay.sent,
            "dropped": relay.dropped,
            "last_error": relay.last_error,
        },
        "ingest": {**ingest.stats.as_dict(), "backlog": ingest.backlog},
        "models": {
            "announced_revision": app[ANNOUNCER].published_revision,
            "last_error": app[ANNOUNCER].last_error,
        },
    }
    return web.json_response({"success": True, "data": data}, status=503 if status == "unhealthy" else 200)


def create_app(config: CentralConfig) -> web.Application:
    """The application; nothing connects until it starts (cleanup_ctx)."""
    app = web.Application()
    app[CONFIG] = config
    app[STARTED_AT] = time.monotonic()
    setup_rate_limits(app, config.rate_limit)  # every authenticated /api/v1 route but health
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_workers)
    app.router.add_get("/api/v1/health", health)
    setup_dashboard(app)  # /dashboard/ and /api/v1/dashboard/...
    setup_models_api(app)  # /api/v1/models, /api/v1/models/{name}/{version}/bundle.tar
    _LOGGER.debug("central app created")
    return app
