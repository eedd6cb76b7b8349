"""Job endpoints: read, list and retry jobs of the caller's shop."""

from __future__ import annotations

from aiohttp import web

from edge_node import keys
from edge_node.api.envelope import ok
from edge_node.api.middlewares import principal_of
from edge_node.api.views import job_view
from edge_node.errors import ForbiddenError, NotFoundError, ValidationFailedError
from edge_node.store import jobs as job_store
from shared_models.jobs import JobStatus

#: Longest page of GET /ocr/jobs; a tablet shows a few dozen at most.
MAX_LIST_LIMIT = 200
DEFAULT_LIST_LIMIT = 50


async def get_job(request: web.Request) -> web.Response:
    """GET /api/v1/ocr/jobs/{job_id}: the job and, when done, its result. Another shop's job is 404."""
    principal = principal_of(request)
    job_id = request.match_info["job_id"]
    job = await request.app[keys.DATABASE].run(job_store.get_job, job_id, principal.shop_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    return ok(job_view(job))


async def list_jobs(request: web.Request) -> web.Response:
    """GET /api/v1/ocr/jobs?status=&limit=: the shop's most recent jobs."""
    principal = principal_of(request)
    status = request.query.get("status")
    if status is not None and status not in {s.value for s in JobStatus}:
        raise ValidationFailedError(
            f"unknown status {status!r}", details={"allowed": [s.value for s in JobStatus]}
        )
    try:
        limit = int(request.query.get("limit", DEFAULT_LIST_LIMIT))
    except ValueError as err:
        raise ValidationFailedError("limit must be an integer") from err
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValidationFailedError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    jobs = await request.app[keys.DATABASE].run(job_store.list_jobs, principal.shop_id, status, limit)
    return ok({"jobs": [job_view(job) for job in jobs], "count": len(jobs)})


async def retry_job(request: web.Request) -> web.Response:
    """POST /api/v1/ocr/jobs/{job_id}/retry: put a dead job back in the queue (admins only)."""
    principal = principal_of(request)
    if principal.role != "admin":
        raise ForbiddenError("only an admin may retry jobs")
    job_id = request.match_info["job_id"]
    db = request.app[keys.DATABASE]
    config = request.app[keys.CONFIG]
    job = await db.run(job_store.retry_dead, job_id, principal.shop_id, config.worker.max_retries + 1)
    if job is None:
        existing = await db.run(job_store.get_job, job_id, principal.shop_id)
        if existing is None:
            raise NotFoundError(f"no job {job_id}")
        raise ValidationFailedError(
            f"job {job_id} is {existing.status.value}; only dead jobs can be retried", status=409
        )
    request.app[keys.QUEUE].notify()
    return ok(job_view(job), status=202)
