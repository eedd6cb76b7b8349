"""The job queue's service side: accept jobs, run them on a bounded pool of workers, report their end.

Workers claim jobs from SQLite with a lease, run the pure pipeline in a thread pool with a time bound,
and write the outcome in one transaction. Jobs may run more than once (a crash between claim and
commit), so the only side effect of a run is that final transaction, which is guarded by status.

A job submitted while a worker slot is free and nothing runnable waits is inserted already claimed, in the
transaction that stores it, and run at once (no claim round trip, no wake-up of a polling worker); it is
recovered after a crash exactly like a claimed job. The slots (`worker.workers`) bound both paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from edge_node.config import EdgeConfig
from edge_node.engines.registry import EngineSet
from edge_node.errors import EdgeError, ModelError, ProcessingTimeoutError, ServiceUnavailableError
from edge_node.idle_trim import IdleTrimmer
from edge_node.pipeline.runner import PipelineLimits, run_image
from edge_node.store import audit
from edge_node.store import jobs as job_store
from edge_node.store.db import Database, transaction
from edge_node.store.images import ImageVault
from edge_node.store.jobs import JobFailure, JobRecord, NewJob
from shared_models.jobs import JobStatus
from shared_models.ocr import OcrOptions, OcrResult

_LOGGER = logging.getLogger(__name__)

#: The seed's RETRY_CONFIG doubles the delay each retry (initial, maximum and count come from the config).
BACKOFF_FACTOR = 2.0
#: Jitter of +-20% so that retries of many jobs failing together do not line up.
JITTER = 0.2
#: Keep this many recent processing times for the queue's time estimate.
RECENT_TIMES = 50

class QueueFullError(Exception):
    """The queue already holds the configured maximum of waiting jobs."""

    def __init__(self, depth: int) -> None:
        super().__init__(f"{depth} jobs queued")
        self.depth = depth


@dataclass(frozen=True, slots=True)
class Submitted:
    """Outcome of `JobQueue.submit`: the job, whether it is new, and how many jobs waited before it."""

    job: JobRecord
    created: bool
    depth: int


class JobAbandonedError(Exception):
    """Raised inside the pipeline thread of a job that already timed out."""


JobListener = Callable[[str, JobRecord, dict[str, Any]], None]


def backoff_seconds(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1-based): initial x 2^(attempt-1), capped, with jitter."""
    base = min(maximum, initial * BACKOFF_FACTOR ** (attempt - 1))
    return base * (1 - JITTER + 2 * JITTER * (rng or random).random())


def pipeline_limits(config: EdgeConfig) -> PipelineLimits:
    """The pipeline's decoding and detector limits from the node's config (the CLI and benchmarks use it too)."""
    return PipelineLimits(
        max_pixels=config.limits.max_image_pixels,
        decode_max_side=config.ocr.decode_max_side,
        detector_max_side=config.ocr.detector_max_side,
        detector_max_side_documents=config.ocr.detector_max_side_documents,
    )


class JobQueue:
    """Accepts jobs, runs them, and lets callers wait for or listen to their outcome."""

    def __init__(self, config: EdgeConfig, db: Database, engines: EngineSet, vault: ImageVault | None) -> None:
        self._config = config
        self._db = db
        self._engines = engines
        self._vault = vault
        self._limits = pipeline_limits(config)
        self._executor = ThreadPoolExecutor(max_workers=config.worker.workers, thread_name_prefix="ocr")
        # Images of jobs accepted by this process and not ended yet, so the worker need not read them back from
        # disk (and `wait` knows such a job cannot have ended before it listens).
        self._images: dict[str, bytes] = {}
        self._waiters: dict[str, list[asyncio.Future[JobRecord]]] = {}
        self._wakeup = asyncio.Event()
        # One slot per worker: held while a job runs (claimed by a worker loop or handed over by `submit`).
        self._slots = asyncio.Semaphore(config.worker.workers)
        self._tasks: list[asyncio.Task[None]] = []
        self._handed: set[asyncio.Task[None]] = set()
        self._listeners: list[JobListener] = []
        self._recent_ms: list[float] = []
        self._stopping = False
        self.busy_workers = 0
        self.stuck_workers = 0
        self._trimmer = IdleTrimmer(self._slots, self._executor)

    # ---- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Re-queue what a previous process left running, then start the workers."""
        requeued = await self._db.run(job_store.requeue_processing)
        if requeued:
            _LOGGER.info("re-queued %d jobs left running by a previous process", requeued)
        self._tasks = [
            asyncio.create_task(self._work(n), name=f"ocr-worker-{n}") for n in range(self._config.worker.workers)
        ]

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming work; running jobs get `grace_seconds` to finish, the rest go back to the queue."""
        self._stopping = True
        self._wakeup.set()
        running = [*self._tasks, *self._handed]
        if running:
            _done, late = await asyncio.wait(running, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._trimmer.stop()
        requeued = await self._db.run(job_store.requeue_processing)
        if requeued:
            _LOGGER.info("shutdown: %d unfinished jobs put back in the queue", requeued)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def add_listener(self, listener: JobListener) -> None:
        """`listener(event, job, data)` is called for queued/started/progress/completed/failed."""
        self._listeners.append(listener)

    # ---- submitting ------------------------------------------------------------------------------------------
    async def submit(
        self,
        job: NewJob,
        image: bytes,
        queue_limit: int | None = None,
        prepare: Callable[[bytes], bytes] | None = None,
    ) -> Submitted:
        """Store the image and queue the job, unless `queue_limit` jobs already wait (then QueueFullError).

        `prepare(image)` (e.g. the header check and metadata strip) runs first, in the same trip off the event
        loop; its error propagates and nothing is stored. The depth check and the insert happen in one
        transaction on the database thread, so a burst of uploads cannot overshoot the limit. When a worker slot
        is free and no runnable job waits, the job is inserted claimed and starts at once.
        """
        if self._stopping:
            raise ServiceUnavailableError("the node is shutting down")
        job_id = job_store.new_job_id()
        handover = not self._slots.locked()
        if handover:
            await self._slots.acquire()  # free: returns without waiting
        loop = asyncio.get_running_loop()
        try:
            submitted, stored = await loop.run_in_executor(
                None, self._store, job, job_id, image, queue_limit, handover, prepare
            )
        except BaseException:
            if handover:
                self._slots.release()
            raise
        claimed = submitted.created and submitted.job.status is JobStatus.PROCESSING
        if submitted.created:
            self._images[submitted.job.id] = stored
            self._emit("job_queued", submitted.job, {"queue_position": submitted.depth + 1})
        if claimed:
            task = asyncio.create_task(self._run_handed(submitted.job), name=f"ocr-job-{submitted.job.id}")
            self._handed.add(task)
            task.add_done_callback(self._handed.discard)
        else:
            if handover:
                self._slots.release()
            if submitted.created:
                self._wakeup.set()
        return submitted

    def _store(
        self, job: NewJob, job_id: str, image: bytes, queue_limit: int | None, claim: bool,
        prepare: Callable[[bytes], bytes] | None,
    ) -> tuple[Submitted, bytes]:
        """On an executor thread: prepare the image, then insert on the database thread (waiting for it here)."""
        stored = prepare(image) if prepare is not None else image
        return self._db.run_sync(self._insert, job, job_id, stored, queue_limit, claim), stored

    def _insert(
        self, conn: Any, job: NewJob, job_id: str, image: bytes, queue_limit: int | None, claim: bool
    ) -> Submitted:
        """One transaction: the image (file fsync'd, index row) before the job row that points at it.

        The job is inserted claimed when `claim` and nothing runnable waits (a new job never overtakes one);
        a repeated idempotency key discards the image."""
        with transaction(conn):
            depth, runnable = job_store.waiting_counts(conn)
            if queue_limit is not None and depth >= queue_limit:
                raise QueueFullError(depth)
            if self._vault is not None:
                self._vault.put(conn, job_id, image)
            lease = self._config.worker.lease_seconds if claim and runnable == 0 else None
            record, created = job_store.insert_job(conn, job, job_id, lease)
            if not created and self._vault is not None:
                self._vault.delete(conn, job_id)
        return Submitted(record, created, depth)

    def notify(self) -> None:
        """Wake idle workers: a job became runnable outside `submit` (a retry)."""
        self._wakeup.set()

    async def wait(self, job_id: str, seconds: float) -> JobRecord:
        """Wait for a job to end; raises TIMEOUT when it does not within `seconds`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[JobRecord] = loop.create_future()
        self._waiters.setdefault(job_id, []).append(future)
        if job_id not in self._images:  # not accepted by this process, or already ended: it may be final now
            current = await self._db.run(job_store.get_job_any, job_id)
            if current is not None and current.status.is_final and not future.done():
                future.set_result(current)
        try:
            return await asyncio.wait_for(future, seconds)
        except TimeoutError as err:
            raise ProcessingTimeoutError(f"job {job_id} is still running; poll GET /api/v1/ocr/jobs/{job_id}") from err
        finally:
            waiters = self._waiters.get(job_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(job_id, None)

    async def queue_depth(self) -> int:
        """Jobs waiting to start."""
        depth, _runnable = await self._db.run(job_store.waiting_counts)
        return depth

    def estimate_seconds(self, position: int) -> float:
        """Expected wait: recent mean processing time x jobs ahead / workers, plus this job's own time."""
        mean_ms = sum(self._recent_ms) / len(self._recent_ms) if self._recent_ms else 500.0
        return round(mean_ms / 1000 * (1 + position / self._config.worker.workers), 2)

    # ---- working ---------------------------------------------------------------------------------------------
    async def _work(self, number: int) -> None:
        """Claim queued jobs (behind others, retries, left by a previous process) whenever a slot is free."""
        poll = self._config.worker.poll_interval_seconds
        while not self._stopping:
            async with self._slots:
                if self._stopping:
                    break
                try:
                    job = await self._db.run(job_store.claim_next, self._config.worker.lease_seconds)
                except ServiceUnavailableError:
                    _LOGGER.exception("worker %d cannot claim jobs", number)
                    job = None
                if job is not None:
                    await self._run(job)
                    continue
            self._wakeup.clear()
            if self.busy_workers == 0:
                self._trimmer.queue_idle()
            try:
                await asyncio.wait_for(self._wakeup.wait(), poll)
            except TimeoutError:
                with contextlib.suppress(ServiceUnavailableError):  # storage failing: logged by the claim
                    await self._db.run(job_store.requeue_expired_leases)

    async def _run_handed(self, job: JobRecord) -> None:
        """A job `submit` inserted claimed: run it in the slot `submit` took."""
        try:
            await self._run(job)
        finally:
            self._slots.release()
            if self.busy_workers == 0:
                self._trimmer.queue_idle()

    async def _run(self, job: JobRecord) -> None:
        """Run one claimed job while holding a slot; storage failing on the outcome leaves it to its lease."""
        self.busy_workers += 1
        self._trimmer.job_started()
        try:
            await self._process(job)
        except ServiceUnavailableError as err:
            # Storage failed while the outcome was being written: the job keeps its lease and runs again
            # once the lease expires; the worker lives on.
            _LOGGER.warning("job %s outcome not stored: %s", job.id, err.message)
        finally:
            self.busy_workers -= 1

    async def _process(self, job: JobRecord) -> None:
        self._emit("job_started", job, {"progress": 0})
        loop = asyncio.get_running_loop()
        abandoned = threading.Event()

        def progress(step: str, fraction: float) -> None:
            if abandoned.is_set():  # timed out: stop at the next stage instead of finishing for nobody
                raise JobAbandonedError(job.id)
            loop.call_soon_threadsafe(
                self._emit, "job_progress", job, {"progress": round(fraction * 100), "current_step": step}
            )

        try:
            image = await self._load_image(job)
            options = OcrOptions.model_validate(job.options)
        except EdgeError as err:
            await self._fail(job, err)
            return
        timeout = self._config.worker.processing_timeout_seconds
        running = loop.run_in_executor(
            self._executor, run_image, image, options, self._engines, self._limits, progress
        )
        try:
            result: OcrResult = await asyncio.wait_for(asyncio.shield(running), timeout)
        except TimeoutError:
            abandoned.set()
            await self._fail(job, ProcessingTimeoutError(f"processing took longer than {timeout:g} s"))
            # Hold this worker slot until the thread comes back, so a hung engine never grows the thread count.
            self.stuck_workers += 1
            try:
                await asyncio.wait([running])
                if not running.cancelled():
                    running.exception()  # retrieved on purpose: the job already failed with TIMEOUT
            finally:
                self.stuck_workers -= 1
            return
        except EdgeError as err:
            await self._fail(job, err)
            return
        except Exception as err:  # an engine bug must fail the job, not kill the worker
            _LOGGER.exception("job %s: unexpected pipeline error", job.id)
            await self._fail(job, ModelError(f"the OCR pipeline failed: {type(err).__name__}: {err}"))
            return
        self._recent_ms = [*self._recent_ms[-(RECENT_TIMES - 1):], result.processing_time_ms]
        payload = result.model_dump(mode="json")
        metrics = [
            (result.model_used, "processing_time_ms", result.processing_time_ms),
            (result.model_used, "confidence", result.confidence),
        ]
        cache = self._config.cache
        done = await self._db.run(
            job_store.complete_job, job.id, payload, metrics, cache.ttl_seconds if cache.enabled else None
        )
        if done is not None:
            self._finish(done, "job_completed", {"result": payload})

    async def _load_image(self, job: JobRecord) -> bytes:
        image = self._images.get(job.id)
        if image is not None:
            return image
        vault = self._vault
        if vault is None:
            raise ModelError("the job's image was not kept (storage.store_images is off) and the node restarted")
        access = audit.worker_access(job.shop_id, f"process job (attempt {job.attempts})")
        image = await self._db.run(vault.read, job.id, access)
        if image is None:
            raise ModelError("the job's image is not stored (store_images off, or purged) and the node restarted")
        return image

    async def _fail(self, job: JobRecord, error: EdgeError) -> None:
        worker = self._config.worker
        retries_left = job.attempts < job.max_attempts
        retry_at = (
            time.time() + backoff_seconds(job.attempts, worker.retry_initial_seconds, worker.retry_max_seconds)
            if error.retriable and retries_left
            else None
        )
        failure = JobFailure(
            code=error.code.value,
            message=error.message,
            details=error.details,
            retry_at=retry_at,
            exhausted=error.retriable and retry_at is None,
        )
        negative_ttl = self._config.cache.negative_ttl_seconds if self._config.cache.enabled else None
        updated = await self._db.run(job_store.fail_job, job.id, failure, negative_ttl)
        if updated is None:
            return
        if retry_at is not None:
            _LOGGER.info("job %s attempt %d failed (%s); retrying", job.id, job.attempts, error.code.value)
            self._wakeup.set()
            asyncio.get_running_loop().call_later(retry_at - time.time(), self._wakeup.set)
            return
        self._finish(updated, "job_failed", {"error": {"code": error.code.value, "message": error.message}})

    def _finish(self, job: JobRecord, event: str, data: dict[str, Any]) -> None:
        self._images.pop(job.id, None)
        for future in self._waiters.pop(job.id, []):
            if not future.done():
                future.set_result(job)
        self._emit(event, job, data)

    def _emit(self, event: str, job: JobRecord, data: dict[str, Any]) -> None:
        for listener in self._listeners:
            try:
                listener(event, job, data)
            except Exception:
                _LOGGER.exception("job listener failed on %s", event)

