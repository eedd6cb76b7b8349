"""Job endpoints: read one job of the caller's shop."""

from __future__ import annotations

from aiohttp import web

from edge_node import keys
from edge_node.api.envelope import ok
from edge_node.api.middlewares import principal_of
from edge_node.api.views import job_view
from edge_node.errors import NotFoundError
from edge_node.store import jobs as job_store


async def get_job(request: web.Request) -> web.Response:
    """GET /api/v1/ocr/jobs/{job_id}: the job and, when done, its result. Another shop's job is 404."""
    principal = principal_of(request)
    job_id = request.match_info["job_id"]
    job = await request.app[keys.DATABASE].run(job_store.get_job, job_id, principal.shop_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    return ok(job_view(job))
