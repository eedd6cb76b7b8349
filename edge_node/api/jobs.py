"""Job endpoints: read and list jobs of the caller's shop; retry, delete and read the stored image (admins)."""

from __future__ import annotations

import asyncio
import sqlite3

from aiohttp import web

from edge_node import keys
from edge_node.api.envelope import ok
from edge_node.api.middlewares import admin_of, principal_of
from edge_node.api.views import job_view
from edge_node.errors import NotFoundError, ValidationFailedError
from edge_node.pipeline.metadata import strip_metadata
from edge_node.store import audit
from edge_node.store import jobs as job_store
from edge_node.store.audit import ImageAccess
from edge_node.store.jobs import DeletedJob
from shared_models.jobs import JobStatus

#: Longest page of GET /ocr/jobs; a tablet shows a few dozen at most.
MAX_LIST_LIMIT = 200
DEFAULT_LIST_LIMIT = 50
#: The audit log's "why" for an image read: given by the admin (?reason=), capped, with a default.
MAX_REASON_CHARS = 200
DEFAULT_IMAGE_REASON = "admin review"
#: Content types of the stored image formats, by file signature.
IMAGE_TYPES = (
    (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"), (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"),
)


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
    principal = admin_of(request)
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


async def delete_job(request: web.Request) -> web.Response:
    """DELETE /api/v1/ocr/jobs/{job_id}: remove a finished job, its stored image and unsent results (admins only).

    409 while the job is queued or processing (delete it once it has ended).
    """
    principal = admin_of(request)
    job_id = request.match_info["job_id"]
    vault = request.app[keys.VAULT]
    access = ImageAccess(principal.user_id, principal.role, principal.shop_id, "job deleted")

    def delete(conn: sqlite3.Connection) -> tuple[DeletedJob, bool]:
        outcome = job_store.delete_job(conn, job_id, principal.shop_id)
        if not outcome.deleted:
            return outcome, False
        image_deleted = vault.delete(conn, job_id)
        audit.record(conn, job_id, access, audit.DELETE)
        return outcome, image_deleted

    outcome, image_deleted = await request.app[keys.DATABASE].run(delete)
    if outcome.job is None:
        raise NotFoundError(f"no job {job_id}")
    if not outcome.deleted:
        raise ValidationFailedError(
            f"job {job_id} is {outcome.job.status.value}; a job can be deleted once it has ended", status=409
        )
    return ok({"job_id": job_id, "deleted": True, "image_deleted": image_deleted,
               "unsent_results_redacted": outcome.redacted_outbox_rows})


async def get_job_image(request: web.Request) -> web.Response:
    """GET /api/v1/ocr/jobs/{job_id}/image?reason=: the stored upload, decrypted and metadata-free (admins only).

    Every read is written to the image audit log with who, when, which job and the reason given.
    """
    principal = admin_of(request)
    job_id = request.match_info["job_id"]
    reason = " ".join(request.query.get("reason", "").split())[:MAX_REASON_CHARS] or DEFAULT_IMAGE_REASON
    db = request.app[keys.DATABASE]
    if await db.run(job_store.get_job, job_id, principal.shop_id) is None:
        raise NotFoundError(f"no job {job_id}")
    access = ImageAccess(principal.user_id, principal.role, principal.shop_id, reason)
    stored = await db.run(request.app[keys.VAULT].read, job_id, access)
    if stored is None:
        raise NotFoundError(f"the image of job {job_id} is not stored (images off, purged after retention)")
    # Stored images are already stripped at upload; this guards blobs written before that rule existed.
    image = await asyncio.get_running_loop().run_in_executor(None, strip_metadata, stored)
    content_type = next((kind for magic, kind in IMAGE_TYPES if image.startswith(magic)), None)
    if content_type is None:
        content_type = "image/webp" if image[:4] == b"RIFF" and image[8:12] == b"WEBP" else "application/octet-stream"
    return web.Response(
        body=image,
        content_type=content_type,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                 "Content-Disposition": f'inline; filename="{job_id}"'},
    )
