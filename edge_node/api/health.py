"""GET /api/v1/health: liveness and readiness for probes, no auth."""

from __future__ import annotations

import time

from aiohttp import web

from edge_node import __version__, keys
from edge_node.api.envelope import ok
from edge_node.errors import ServiceUnavailableError
from edge_node.store import jobs as job_store
from edge_node.store import outbox as outbox_store
from shared_models.jobs import JobStatus

#: More queued jobs than this per worker and the node reports itself `degraded`.
DEGRADED_QUEUE_PER_WORKER = 20


async def health(request: web.Request) -> web.Response:
    """`healthy`, `degraded` (overloaded) or `unhealthy` (storage failing; answered with 503)."""
    app = request.app
    config = app[keys.CONFIG]
    try:
        counts = await app[keys.DATABASE].run(job_store.queue_counts)
        backlog = await app[keys.DATABASE].run(outbox_store.backlog)
    except ServiceUnavailableError as err:
        body = {"status": "unhealthy", "version": __version__, "reason": err.message}
        return web.json_response({"success": False, "data": body, "error": {"code": err.code.value,
                                                                             "message": err.message}}, status=503)
    pending = counts[JobStatus.QUEUED.value]
    queue = app[keys.QUEUE]
    overloaded = pending > DEGRADED_QUEUE_PER_WORKER * config.worker.workers
    status = "degraded" if overloaded or queue.stuck_workers else "healthy"
    return ok(
        {
            "status": status,
            "version": __version__,
            "node_id": config.node.node_id,
            "shop_id": config.auth.shop_id,
            "uptime_seconds": round(time.monotonic() - app[keys.STARTED_AT], 1),
            "models_loaded": app[keys.ENGINES].names,
            "queue_status": {
                "pending_jobs": pending,
                "processing_jobs": counts[JobStatus.PROCESSING.value],
                "failed_jobs": counts[JobStatus.FAILED.value] + counts[JobStatus.DEAD.value],
                "completed_jobs": counts[JobStatus.COMPLETED.value],
                "workers": config.worker.workers,
                "busy_workers": queue.busy_workers,
                "stuck_workers": queue.stuck_workers,
            },
            "sync": _sync_state(app, backlog),
        }
    )


def _sync_state(app: web.Application, backlog: int) -> dict[str, object]:
    """enabled, connected, backlog (outbox rows not yet acked by central), last_ack_at, in_flight."""
    publisher = app.get(keys.SYNC)
    if publisher is None:
        return {"enabled": False, "connected": False, "backlog": backlog, "last_ack_at": None, "in_flight": 0}
    return publisher.health() | {"backlog": backlog}
