"""OCR endpoints: process (sync), process/async, batch. They validate, strip the upload's metadata (after applying
its orientation, off the event loop in the call that stores the job), queue and wait; workers do the work."""

from __future__ import annotations

import asyncio
import hashlib
import math
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from edge_node import keys
from edge_node.api.envelope import error_body, ok
from edge_node.api.middlewares import principal_of
from edge_node.api.uploads import Upload, parse_options, read_upload
from edge_node.api.views import result_view
from edge_node.auth import Principal
from edge_node.errors import (
    EdgeError,
    InvalidImageError,
    QuotaExceededError,
    ValidationFailedError,
    error_from_code,
)
from edge_node.pipeline.metadata import strip_metadata
from edge_node.pipeline.preprocess import inspect_image
from edge_node.store import cache as result_cache
from edge_node.store import jobs as job_store
from edge_node.store.jobs import JobFailure, JobRecord, NewJob
from edge_node.worker import QueueFullError
from shared_models.jobs import JobStatus
from shared_models.ocr import OcrOptions

#: Idempotency keys are opaque client strings; cap them so they cannot bloat the index.
MAX_IDEMPOTENCY_KEY = 128


def _error_of(job: JobRecord) -> EdgeError:
    """The typed error a failed job ended with, for the sync response."""
    return error_from_code(job.error_code, job.error_message, {"job_id": job.id})


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accepted upload: its job (already final when answered from the cache) and whether the node is busy."""

    job: JobRecord
    overloaded: bool


class OcrHandlers:
    """Handlers sharing the parsing and queueing steps."""

    async def _accept(
        self, request: web.Request, principal: Principal, data: bytes, options: OcrOptions, idempotency: str | None
    ) -> Accepted:
        """Answer from the cache, or check the header and queue the job. Refusals are recorded as failed jobs."""
        app = request.app
        config = app[keys.CONFIG]
        db = app[keys.DATABASE]
        queue = app[keys.QUEUE]
        new_job = NewJob(
            shop_id=principal.shop_id,
            user_id=principal.user_id,
            document_type=options.type.value,
            options=options.model_dump(mode="json"),
            image_hash=hashlib.sha256(data).hexdigest(),
            image_size_bytes=len(data),
            idempotency_key=idempotency,
            max_attempts=config.worker.max_retries + 1,
        )
        negative_ttl = config.cache.negative_ttl_seconds if config.cache.enabled else None
        if config.cache.enabled and idempotency is None and new_job.image_hash is not None:
            hit = await db.run(result_cache.lookup, result_cache.cache_key(new_job.image_hash, new_job.options))
            if hit is not None and hit.result is not None:
                return Accepted(await db.run(job_store.insert_cached, new_job, hit.result), overloaded=False)
            if hit is not None:
                invalid = InvalidImageError(hit.error_message or "the image cannot be read")
                await db.run(job_store.insert_rejected, new_job, JobFailure(invalid.code.value, invalid.message))
                raise invalid
        try:
            submitted = await queue.submit(
                new_job, data, queue_limit=config.worker.hard_queue_limit,
                prepare=partial(_checked_and_stripped, max_pixels=config.limits.max_image_pixels),
            )
        except InvalidImageError as err:
            await db.run(job_store.insert_rejected, new_job, JobFailure(err.code.value, err.message), negative_ttl)
            raise
        except QueueFullError as full:
            retry_after = max(1, math.ceil(queue.estimate_seconds(full.depth)))
            quota = QuotaExceededError(
                f"the node is overloaded ({full.depth} jobs queued); try again in {retry_after} s",
                retry_after=retry_after,
                details={"queued_jobs": full.depth},
            )
            await db.run(job_store.insert_rejected, new_job, JobFailure(quota.code.value, quota.message))
            raise quota from full
        return Accepted(submitted.job, overloaded=submitted.depth >= config.worker.soft_queue_limit)

    async def _reject(
        self, request: web.Request, principal: Principal, error: EdgeError, fields: dict[str, str]
    ) -> None:
        """Record a request refused for its options, so the job table shows every request."""
        rejected = NewJob(
            shop_id=principal.shop_id,
            user_id=principal.user_id,
            document_type=fields.get("type", "unknown")[:32],
            options={k: v[:64] for k, v in fields.items()},
            image_hash=None,
            image_size_bytes=None,
        )
        await request.app[keys.DATABASE].run(
            job_store.insert_rejected, rejected, JobFailure(error.code.value, error.message, error.details)
        )

    async def _read(self, request: web.Request, principal: Principal, max_files: int) -> tuple[Upload, OcrOptions]:
        config = request.app[keys.CONFIG]
        max_bytes = int(config.limits.max_image_size_mb * 1_000_000)
        try:
            upload = await read_upload(request, max_file_bytes=max_bytes, max_files=max_files)
            if not upload.files:
                raise ValidationFailedError("no image: send the file in a multipart field named 'image'")
            options = parse_options(upload.fields)
        except EdgeError as err:
            await self._reject(request, principal, err, {})
            raise
        return upload, options

    async def process(self, request: web.Request) -> web.Response:
        """POST /api/v1/ocr/process: OCR one image and answer with the result."""
        principal = principal_of(request)
        upload, options = await self._read(request, principal, max_files=1)
        accepted = await self._accept(request, principal, upload.files[0][1], options, _idempotency_key(request))
        if accepted.overloaded and not accepted.job.status.is_final:
            # The seed's high-load rule: answer with the job and an estimate instead of holding the caller.
            return await self._queued_response(request, accepted.job)
        done = accepted.job
        if not done.status.is_final:
            done = await request.app[keys.QUEUE].wait(done.id, self._wait_seconds(request))
        if done.status is not JobStatus.COMPLETED:
            raise _error_of(done)
        return ok(result_view(done))

    async def process_async(self, request: web.Request) -> web.Response:
        """POST /api/v1/ocr/process/async: queue one image, answer 202 with the job id at once."""
        principal = principal_of(request)
        upload, options = await self._read(request, principal, max_files=1)
        accepted = await self._accept(request, principal, upload.files[0][1], options, _idempotency_key(request))
        return await self._queued_response(request, accepted.job)

    @staticmethod
    async def _queued_response(request: web.Request, job: JobRecord) -> web.Response:
        queue = request.app[keys.QUEUE]
        position = await queue.queue_depth()
        return ok(
            {
                "job_id": job.id,
                "status": job.status.value,
                "estimated_time_seconds": 0.0 if job.status.is_final else queue.estimate_seconds(position),
                "progress_percentage": 100 if job.status.is_final else 0,
                "queue_position": 0 if job.status.is_final else position,
            },
            status=202,
        )

    async def batch(self, request: web.Request) -> web.Response:
        """POST /api/v1/ocr/batch: up to N images with shared options; per-image success or error."""
        principal = principal_of(request)
        config = request.app[keys.CONFIG]
        upload, options = await self._read(request, principal, max_files=config.limits.max_batch_images)
        queue = request.app[keys.QUEUE]

        async def one(index: int, data: bytes) -> dict[str, Any]:
            try:
                done = (await self._accept(request, principal, data, options, None)).job
                if not done.status.is_final:
                    done = await queue.wait(done.id, self._wait_seconds(request))
                if done.status is not JobStatus.COMPLETED:
                    raise _error_of(done)
            except EdgeError as err:
                return {"index": index, "success": False, "error": error_body(err)}
            return {"index": index, "success": True, "result": result_view(done)}

        results = await asyncio.gather(*(one(i, data) for i, (_name, data) in enumerate(upload.files)))
        return ok({"results": results, "total": len(results), "succeeded": sum(r["success"] for r in results)})

    @staticmethod
    def _wait_seconds(request: web.Request) -> float:
        worker = request.app[keys.CONFIG].worker
        # A sync caller waits for the job's own time bound plus a retry; after that it gets TIMEOUT and the job id.
        return worker.processing_timeout_seconds * 2 + 5


def _checked_and_stripped(data: bytes, max_pixels: int) -> bytes:
    """Header check (size caps) first, then the upload upright and without metadata: what is stored and run.
    Runs off the event loop, in the same executor call that stores the job (`JobQueue.submit`'s `prepare`).

    The job keeps the hash of the bytes as uploaded, so the cache still answers a repeated upload before
    any decoding."""
    inspect_image(data, max_pixels=max_pixels)
    return strip_metadata(data)


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationFailedError(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters")
    return key
