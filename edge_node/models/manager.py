"""The node's model manager: follows central's announcements to the serving and shadow models it should have.

On every announcement newer than the last one applied (see shared_models.model_updates) it works out which
rollout targets this node and converges: download (resumable, sha256 checked) -> unpack -> verify signature and
hashes against `ocr.trusted_keys` -> load into a staging slot and run the bundle's self-test -> swap the engine
routing in one assignment (jobs already running finish with the recognizers they started with) -> record it in
SQLite -> report (retained status, /health). A swapped-in model is on probation for `models.probation_jobs` of
its calls; too many failures roll it back to what served before. A rollout to nothing brings back the embedded
default. Any failure leaves the serving model as it was; the reason goes to /health, the node's error log and
central (an `errors` outbox row). Failures of the bundle itself are remembered and never retried; a download
that failed (no link to central) is retried every `models.retry_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from pydantic import ValidationError

from edge_node.config import EdgeConfig
from edge_node.engines.base import TextRecognizer
from edge_node.engines.registry import EngineSet
from edge_node.engines.trocr_onnx import KEY as TROCR_KEY
from edge_node.errors import ServiceUnavailableError
from edge_node.models.download import download_bundle
from edge_node.models.errors import ModelUpdateError
from edge_node.models.installed import InstalledModel, now_iso, prune_bundles
from edge_node.models.probation import WatchedRecognizer
from edge_node.models.reporting import model_versions, serving_by_language, shadow_metrics
from edge_node.models.shadow import ShadowRecognizer, shadow_routing
from edge_node.models.staging import LoadSettings, load_folder, stage_archive
from edge_node.store import model_state
from edge_node.store.db import Database
from shared_models.model_updates import (
    MODEL_UPDATE_FAILED,
    ModelAnnouncement,
    ModelRollout,
    NodeErrorLog,
    supersedes,
)

_LOGGER = logging.getLogger(__name__)


class ModelManager:
    """See the module docstring. Lives on the event loop; model loading runs in the default executor."""

    def __init__(self, config: EdgeConfig, db: Database, engines: EngineSet) -> None:
        self._config = config
        self._settings = config.models
        self._db = db
        self._engines = engines
        #: Called after every change of what serves (the sync publisher republishes the node status).
        self.on_change: Callable[[], None] | None = None
        self._dir = config.models_dir
        self._load = LoadSettings(trusted_keys=tuple(config.ocr.trusted_keys), threads=config.ocr.onnx_threads,
                                  enable_gpu=config.ocr.enable_gpu, max_bytes=self._settings.max_bundle_mb << 20)
        self.serving: InstalledModel | None = None
        self.previous: InstalledModel | None = None
        self.shadow: InstalledModel | None = None
        self._serving_engine: WatchedRecognizer | TextRecognizer | None = None
        self._shadow_engine: ShadowRecognizer | None = None
        self._candidate: TextRecognizer | None = None
        self._shadow_sample = 0.1
        self.revision = -1
        self.registry_epoch: str | None = None  # central's registry the revision belongs to
        self._latest: ModelAnnouncement | None = None
        self._failed: dict[str, dict[str, Any]] = {}
        self.last_update: dict[str, Any] | None = None
        self._retry_due = False
        self._wakeup = asyncio.Event()
        self._busy = asyncio.Lock()  # one change at a time: an update and a probation rollback never interleave
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._reported_shadow: tuple[int, int] | None = None

    # ---- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bring back the models this node served before a restart, then follow announcements."""
        state = await self._db.run(_read_state)
        self._failed = state["failed"]
        self.revision = int((state["revision"] or {}).get("revision", -1))
        self.registry_epoch = (state["revision"] or {}).get("epoch")
        self.previous = _installed(state["previous"])
        for role in ("serving", "shadow"):
            installed = _installed(state[role])
            if installed is None:
                continue
            try:
                recognizer = await asyncio.to_thread(load_folder, installed.path, installed.name,
                                                     installed.version, self._load)
            except ModelUpdateError as err:
                _LOGGER.error("the %s model %s no longer loads: %s", role, installed.label, err.message)
                await self._db.run(model_state.put_slots, {role: None})
                await self._fail(installed.label, installed.sha256, err)
                continue
            if role == "serving":
                self._serve(installed, recognizer, probation=installed.state == "probation")
            else:
                self._run_shadow(installed, recognizer)
        self._http = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._update_forever(), name="model-updates"),
                       asyncio.create_task(self._report_shadow_forever(), name="shadow-reports")]

    async def stop(self) -> None:
        """Stop following announcements (a download in progress is abandoned; its part file stays)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._shadow_engine is not None:
            self._shadow_engine.close()
        if self._http is not None:
            await self._http.close()

    # ---- announcements ----------------------------------------------------------------------------------------
    def receive(self, _topic: str, payload: bytes) -> None:
        """An announcement arrived (retained or for this node); newer revisions replace what waits."""
        try:
            announcement = ModelAnnouncement.model_validate_json(payload)
        except ValidationError as err:
            _LOGGER.warning("ignoring a malformed model announcement: %s", err.errors()[:1])
            return
        if self._latest is not None:
            newest = (self._latest.epoch, self._latest.revision)
        else:
            newest = (self.registry_epoch, self.revision)
        if not supersedes(announcement.epoch, announcement.revision, *newest):
            _LOGGER.debug("ignoring model announcement %s revision %d (have %s revision %d)",
                          announcement.epoch, announcement.revision, *newest)
            return
        self._latest = announcement
        self._wakeup.set()

    async def _update_forever(self) -> None:
        while True:
            timeout = self._settings.retry_seconds if self._retry_due else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            self._wakeup.clear()
            if self._latest is not None:
                try:
                    await self.apply(self._latest)
                except ServiceUnavailableError as err:  # the node's disk failed; try again with the next wake-up
                    _LOGGER.error("model update paused: %s", err.message)
                    self._retry_due = True

    async def apply(self, announcement: ModelAnnouncement) -> None:
        """Converge on what `announcement` asks of this node."""
        node, shop = self._config.node.node_id, self._config.auth.shop_id
        async with self._busy:
            self._retry_due = False
            done = await self._converge_serving(announcement.serving_for(shop, node))
            done = await self._converge_shadow(announcement.shadow_for(shop, node)) and done
            if done and supersedes(announcement.epoch, announcement.revision, self.registry_epoch, self.revision):
                self.revision, self.registry_epoch = announcement.revision, announcement.epoch
                await self._db.run(model_state.put_slots, {"revision": {
                    "revision": announcement.revision, "epoch": announcement.epoch}})

    async def _converge_serving(self, target: ModelRollout | None) -> bool:
        if target is None:
            if self.serving is not None:
                _LOGGER.info("central no longer rolls %s out to this node: back to the embedded default",
                             self.serving.label)
                retired = self.serving
                self._unserve()
                await self._db.run(model_state.put_slots, {"serving": None, "previous": None})
                self.previous = None
                self._updated("restored-default", retired.label)
                await asyncio.to_thread(self._prune)
            return True
        if self.serving is not None and self.serving.sha256 == target.bundle.sha256:
            return True
        if target.bundle.sha256 in self._failed:
            return True  # refused before: keep serving what we have (the reason is in /health)
        staged = await self._stage(target, "probation")
        if staged is None:
            return not self._retry_due
        installed, recognizer = staged
        replaced = self.serving
        self._serve(installed, recognizer, probation=True)
        await self._db.run(model_state.put_slots, {
            "serving": installed.to_doc(), "previous": replaced.to_doc() if replaced else None})
        self.previous = replaced
        self._updated("installed", installed.label)
        await asyncio.to_thread(self._prune)
        return True

    async def _converge_shadow(self, target: ModelRollout | None) -> bool:
        if target is None or target.bundle.sha256 in self._failed:
            if self.shadow is not None:
                self._stop_shadow()
                await self._db.run(model_state.put_slots, {"shadow": None})
                await asyncio.to_thread(self._prune)
            return True
        if self.shadow is not None and self.shadow.sha256 == target.bundle.sha256:
            return True
        staged = await self._stage(target, "shadow")
        if staged is None:
            return not self._retry_due
        installed, recognizer = staged
        self._stop_shadow()
        self._run_shadow(installed, recognizer, sample=target.shadow_sample)
        await self._db.run(model_state.put_slots, {"shadow": installed.to_doc()})
        self._updated("shadow-started", installed.label)
        return True

    async def _stage(self, rollout: ModelRollout, state: str) -> tuple[InstalledModel, TextRecognizer] | None:
        """Download, unpack, verify, load and self-test; None (and the failure recorded) when it fails."""
        assert self._http is not None, "start() first"
        archive = self._dir / "downloads" / f"{rollout.bundle.sha256}.tar"
        folder = self._dir / rollout.name / rollout.version
        base_url = self._settings.central_url or ""
        try:
            if rollout.bundle.size > self._load.max_bytes:
                raise ModelUpdateError(f"the bundle has {rollout.bundle.size} bytes, over models.max_bundle_mb",
                                       stage="download", permanent=True)
            await download_bundle(self._http, base_url, self._settings.central_token, rollout.bundle, archive,
                                  attempts=self._settings.download_attempts,
                                  timeout_seconds=self._settings.download_timeout_seconds)
            recognizer = await asyncio.to_thread(stage_archive, archive, folder, rollout.name, rollout.version,
                                                 self._load)
            await asyncio.to_thread(archive.unlink, missing_ok=True)
        except ModelUpdateError as err:
            await self._fail(rollout.label, rollout.bundle.sha256, err)
            return None
        return InstalledModel.from_rollout(rollout, folder, state), recognizer

    # ---- routing ----------------------------------------------------------------------------------------------
    def _serve(self, installed: InstalledModel, recognizer: TextRecognizer, *, probation: bool) -> None:
        loop = asyncio.get_running_loop()
        engine: WatchedRecognizer | TextRecognizer = recognizer
        if probation:
            engine = WatchedRecognizer(
                recognizer, window=self._settings.probation_jobs, max_error_rate=self._settings.max_error_rate,
                on_trip=lambda reason: loop.call_soon_threadsafe(self._trip, installed.sha256, reason),
                on_pass=lambda: loop.call_soon_threadsafe(self._confirm, installed.sha256),
            )
        self.serving = installed
        self._serving_engine = engine
        self._route()

    def _unserve(self) -> None:
        self.serving = None
        self._serving_engine = None
        self._route()

    def _run_shadow(self, installed: InstalledModel, recognizer: TextRecognizer, sample: float = 0.1) -> None:
        self.shadow = installed
        self._candidate = recognizer
        self._shadow_sample = sample
        self._route()

    def _stop_shadow(self) -> None:
        self.shadow = None
        self._candidate = None
        self._route()

    def _route(self) -> None:
        """Build the routing from the default + serving model + shadow, and swap it in."""
        routing = self._engines.default_routing
        if self._serving_engine is not None and self.serving is not None:
            routing = self._engines.with_primary(TROCR_KEY, self._serving_engine, frozenset(self.serving.languages))
        old_shadow, self._shadow_engine = self._shadow_engine, None
        if self._candidate is not None:
            routing, self._shadow_engine = shadow_routing(routing, self._candidate, self._shadow_sample)
        self._engines.swap(routing)
        if old_shadow is not None:
            old_shadow.close()
        self._changed()

    # ---- probation --------------------------------------------------------------------------------------------
    def _trip(self, sha256: str, reason: str) -> None:
        if self.serving is None or self.serving.sha256 != sha256:
            return
        asyncio.get_running_loop().create_task(self._roll_back(reason), name="model-rollback")

    async def _roll_back(self, reason: str) -> None:
        async with self._busy:
            await self._roll_back_now(reason)

    async def _roll_back_now(self, reason: str) -> None:
        failed, previous = self.serving, self.previous
        if failed is None:
            return
        self._unserve()  # the embedded default serves at once; the previous bundle follows once it has loaded
        await self._db.run(model_state.put_slots, {"serving": None, "previous": None})
        await self._fail(failed.label, failed.sha256,
                         ModelUpdateError(f"rolled back: {reason}", stage="probation", permanent=True))
        if previous is not None:
            try:
                recognizer = await asyncio.to_thread(load_folder, previous.path, previous.name, previous.version,
                                                     self._load)
            except ModelUpdateError as err:
                await self._fail(previous.label, previous.sha256, err)
                return
            restored = previous.with_state("confirmed")
            self._serve(restored, recognizer, probation=False)
            await self._db.run(model_state.put_slots, {"serving": restored.to_doc()})
        self.previous = None
        await asyncio.to_thread(self._prune)

    def _confirm(self, sha256: str) -> None:
        if self.serving is None or self.serving.sha256 != sha256:
            return
        self.serving = self.serving.with_state("confirmed")
        self._db_task(model_state.put_slots, {"serving": self.serving.to_doc()})
        _LOGGER.info("model %s passed probation", self.serving.label)

    # ---- reporting --------------------------------------------------------------------------------------------
    async def _fail(self, label: str, sha256: str, err: ModelUpdateError) -> None:
        _LOGGER.warning("model update %s failed at %s: %s", label, err.stage, err.message)
        at = now_iso()
        failure = {"model": label, "stage": err.stage, "reason": err.message, "at": at}
        if err.permanent:
            self._failed[sha256] = failure
        else:
            self._retry_due = True
        self.last_update = {"state": "failed", **failure, "permanent": err.permanent}
        log = NodeErrorLog(code=MODEL_UPDATE_FAILED, message=f"{err.stage}: {err.message}", model=label, at=at)
        await self._db.run(model_state.record_failure, sha256, failure if err.permanent else None,
                           log.model_dump(mode="json"), self._config.sync.enabled)
        self._changed()

    def _updated(self, state: str, label: str) -> None:
        self.last_update = {"state": state, "model": label, "at": now_iso()}
        _LOGGER.info("model update: %s %s", state, label)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _db_task(self, fn: Callable[..., object], *args: object) -> None:
        asyncio.get_running_loop().create_task(self._db.run(fn, *args))

    async def _report_shadow_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.shadow_report_seconds)
            await self.report_shadow()

    async def report_shadow(self) -> None:
        """Queue the shadow model's agreement for central, when it has compared new lines since the last report."""
        if self._shadow_engine is None or self.shadow is None:
            return
        stats = self._shadow_engine.stats()
        key = (self.shadow.rollout_id, stats.lines)
        if stats.agreement is None or key == self._reported_shadow:
            return
        body = shadow_metrics(self.shadow.label, stats, now_iso())
        if self._config.sync.enabled:
            await self._db.run(model_state.queue_metrics, body)
        self._reported_shadow = key

    def model_versions(self) -> dict[str, str]:
        """The node status's `model_versions` (see `reporting.model_versions`)."""
        return model_versions(self._engines.routing.primary, self.serving, self.shadow)

    def health(self) -> dict[str, Any]:
        """The `models` block of /health."""
        shadow: dict[str, Any] | None = None
        if self.shadow is not None:
            stats = self._shadow_engine.stats() if self._shadow_engine else None
            shadow = {"model": self.shadow.label, "since": self.shadow.since,
                      "agreement": stats.agreement if stats else None, "lines": stats.lines if stats else 0}
        serving = self.serving
        watched = self._serving_engine if isinstance(self._serving_engine, WatchedRecognizer) else None
        return {
            "updates": True,
            "serving": serving_by_language(self._engines.routing.primary, self.serving, self.shadow),
            "installed": None if serving is None else {
                "model": serving.label, "state": serving.state, "since": serving.since,
                "probation": None if watched is None or watched.decided else {
                    "calls": watched.calls, "errors": watched.errors, "window": watched.window}},
            "previous": self.previous.label if self.previous else None,
            "shadow": shadow,
            "revision": self.revision,
            "registry_epoch": self.registry_epoch,
            "last_update": self.last_update,
            "refused": sorted(f["model"] for f in self._failed.values()),
        }

    def _prune(self) -> None:
        """Delete unpacked bundles that are neither serving, previous nor shadow."""
        prune_bundles(self._dir, [m.path for m in (self.serving, self.previous, self.shadow) if m is not None])

def _installed(doc: dict[str, Any] | None) -> InstalledModel | None:
    return None if doc is None else InstalledModel.from_doc(doc)


def _read_state(conn: Any) -> dict[str, Any]:
    return {slot: model_state.get_slot(conn, slot) for slot in ("serving", "previous", "shadow", "revision")} | {
        "failed": model_state.failed_bundles(conn)}

