"""GET /api/v1/health: liveness and readiness for probes, no auth.

`unhealthy` (HTTP 503) when the node cannot do its work: the database cannot be read, or the storage cannot be
written (read-only or full data directory, see store/probe.py). An unwritable disk is `unhealthy`, not
`degraded`: every upload is written before it is answered, so such a node refuses ALL OCR work with 503, and a
200 would keep k8s readiness, a load balancer and compose's healthcheck sending tablets to it while monitoring
stays green. 503 takes it out of rotation and raises the alert, and the `storage` block says why. Reads of
existing jobs still work meanwhile. A liveness probe on this path restarts the node after its failure threshold
(2 minutes in compose/k8s): harmless, since every state is on disk, though a restart does not free the disk.
`degraded` (200) stays for a node that works, but slowly: a long queue or stuck workers.
"""

from __future__ import annotations

import time

from aiohttp import web

from edge_node import __version__, keys
from edge_node.api.envelope import ok
from edge_node.errors import ServiceUnavailableError
from edge_node.store import jobs as job_store
from edge_node.store import outbox as outbox_store
from edge_node.store.probe import StorageProbe, StorageState
from shared_models.errors import ErrorCode
from shared_models.jobs import JobStatus

#: More queued jobs than this per worker and the node reports itself `degraded`.
DEGRADED_QUEUE_PER_WORKER = 20
#: The storage probe of this app (create_app sets it).
STORAGE_PROBE = web.AppKey("storage_probe", StorageProbe)


async def health(request: web.Request) -> web.Response:
    """`healthy`, `degraded` (overloaded) or `unhealthy` (storage failing; answered with 503)."""
    app = request.app
    config = app[keys.CONFIG]
    storage = await _storage_state(app)
    try:
        counts = await app[keys.DATABASE].run(job_store.queue_counts)
        backlog = await app[keys.DATABASE].run(outbox_store.backlog)
    except ServiceUnavailableError as err:
        body = {"status": "unhealthy", "version": __version__, "reason": err.message, "storage": storage.as_dict()}
        return web.json_response({"success": False, "data": body, "error": {"code": err.code.value,
                                                                             "message": err.message}}, status=503)
    pending = counts[JobStatus.QUEUED.value]
    queue = app[keys.QUEUE]
    overloaded = pending > DEGRADED_QUEUE_PER_WORKER * config.worker.workers
    status = "degraded" if overloaded or queue.stuck_workers else "healthy"
    return _with_storage(
        storage,
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
            "models": _models_state(app),
        }
    )


def _sync_state(app: web.Application, backlog: int) -> dict[str, object]:
    """enabled, connected, backlog (outbox rows not yet acked by central), last_ack_at, in_flight."""
    publisher = app.get(keys.SYNC)
    if publisher is None:
        return {"enabled": False, "connected": False, "backlog": backlog, "last_ack_at": None, "in_flight": 0}
    return publisher.health() | {"backlog": backlog}


def _models_state(app: web.Application) -> dict[str, object]:
    """What serves, the model on probation or in shadow, and why the last update failed (if it did)."""
    manager = app.get(keys.MODELS)
    if manager is None:
        return {"updates": False, "serving": dict(app[keys.ENGINES].primary)}
    return manager.health()


async def _storage_state(app: web.Application) -> StorageState:
    """Whether the data directory and the database take writes now (probed at most every few seconds)."""
    return await app[STORAGE_PROBE].check(app[keys.DATABASE])


def _with_storage(storage: StorageState, data: dict[str, object]) -> web.Response:
    """The health answer with its `storage` block; 503 `unhealthy` when the storage takes no writes."""
    data["storage"] = storage.as_dict()
    if storage.writable:
        return ok(data)
    data["status"] = "unhealthy"
    message = f"node storage is not writable: {storage.error}"
    return web.json_response({"success": False, "data": data,
                              "error": {"code": ErrorCode.SERVICE_UNAVAILABLE.value, "message": message}}, status=503)
