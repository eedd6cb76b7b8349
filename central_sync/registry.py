"""The model registry (DESIGN §6): stored bundles, rollouts, and the announcement every change publishes.

- `upload`: a bundle folder or tar is checked (central_sync/bundle_check.py), packed into the tar nodes download
  (central_sync/bundle_archive.py) and stored atomically at `registry.storage_dir/NAME/VERSION/bundle.tar` with
  its sha256 and size. NAME VERSION is immutable: the same content again is a no-op, other content is refused.
- `rollout` / `rollback`: the rules are in central_sync/rollout_plan.py. Each change is one transaction that
  also bumps the revision in model_state; then, still under the registry lock, the new announcement is published
  (central_sync/announce.py): retained on the fleet-wide topic and to every known node.
- `overview`: bundles and rollouts with what nodes report (central_sync/rollout_stats.py), for
  `central-sync models list`, GET /api/v1/models and the dashboard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central_sync import registry_store as store
from central_sync.announce import node_topics, payload, publish_once
from central_sync.bundle_archive import ARCHIVE_NAME, discard, install, opened_upload, pack
from central_sync.bundle_check import check_bundle, load_trusted_keys, safe_segment
from central_sync.config import CentralConfig
from central_sync.db.engine import translate
from central_sync.errors import (
    AnnounceError,
    BundleConflictError,
    BundleNotFoundError,
    NothingToRollBackError,
)
from central_sync.rollout_plan import (
    DEFAULT_SHADOW_SAMPLE,
    ROLLED_BACK,
    SUPERSEDED,
    BundleRecord,
    RolloutRecord,
    announcement,
    describe,
    includes_shop,
    to_roll_back,
    to_supersede,
)
from central_sync.rollout_stats import NO_REPORTS, ShadowAgreement, nodes_reporting, shadow_agreement
from shared_models.model_updates import ModelAnnouncement, RolloutTarget, bundle_path

_LOGGER = logging.getLogger(__name__)

#: Publishes (announcement JSON, per-node topics); the default connects to the configured broker once.
Publisher = Callable[[bytes, list[str]], Awaitable[None]]
#: Uploaded tars are unpacked here (inside storage_dir: same file system, cleaned up after).
UPLOAD_SCRATCH = ".uploads"


@dataclass(frozen=True)
class UploadResult:
    """The stored bundle, and whether this upload stored it (False: the same content was there already)."""

    bundle: BundleRecord
    created: bool


@dataclass(frozen=True)
class Change:
    """What a rollout or rollback did, and the announcement it published."""

    announced: ModelAnnouncement
    rollout_id: int | None
    ended: list[int] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)
    nodes_notified: int = 0


@dataclass(frozen=True)
class Overview:
    """Bundles, rollouts (active ones, or all with history), and what nodes report about them."""

    revision: int
    bundles: list[BundleRecord]
    rollouts: list[RolloutRecord]
    agreement: dict[str, ShadowAgreement]
    running: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready document (the CLI's --json, GET /api/v1/models, the dashboard)."""
        return {
            "revision": self.revision,
            "bundles": [bundle_json(b) for b in self.bundles],
            "rollouts": [
                rollout_json(r, self.agreement.get(r.label, NO_REPORTS), self.running.get(r.label, 0))
                for r in self.rollouts
            ],
        }


def bundle_json(bundle: BundleRecord) -> dict[str, Any]:
    """A stored bundle as JSON."""
    return {
        "name": bundle.name, "version": bundle.version, "engine": bundle.engine, "languages": list(bundle.languages),
        "signer_key_id": bundle.signer_key_id, "signature_verified": bundle.signature_verified,
        "sha256": bundle.archive_sha256, "size": bundle.archive_size,
        "path": bundle_path(bundle.name, bundle.version), "uploaded_at": bundle.uploaded_at.isoformat(),
    }


def rollout_json(record: RolloutRecord, agreement: ShadowAgreement, running: int) -> dict[str, Any]:
    """A rollout as JSON, with the nodes that report running it and (shadow rollouts) the agreement."""
    return {
        "rollout_id": record.rollout_id, "name": record.name, "version": record.version, "label": record.label,
        "target": record.target.model_dump(mode="json"), "target_text": describe(record.target),
        "shadow": record.shadow, "shadow_sample": record.shadow_sample if record.shadow else None,
        "state": record.state, "superseded_by": record.superseded_by,
        "created_at": record.created_at.isoformat(),
        "ended_at": record.ended_at.isoformat() if record.ended_at else None,
        "nodes_reporting": running, "shadow_agreement": agreement.as_dict(),
    }


class Registry:
    """Registry operations against the database, the storage folder and the broker."""

    def __init__(self, config: CentralConfig, engine: AsyncEngine, publisher: Publisher | None = None) -> None:
        self._config = config
        self._engine = engine
        self._publisher = publisher or self._publish_to_broker
        self.storage_dir = config.registry.storage_dir

    def archive_path(self, bundle: BundleRecord) -> Path:
        """Where a stored bundle's tar is."""
        return self.storage_dir / bundle.storage_path

    async def _publish_to_broker(self, data: bytes, topics: list[str]) -> None:
        registry = self._config.registry
        await asyncio.to_thread(publish_once, self._config.mqtt, data, topics, registry.publish_timeout_seconds)

    # ---- bundles --------------------------------------------------------------------------------------------
    async def upload(self, source: Path) -> UploadResult:
        """Check, pack and store a bundle folder or tar (see the module docstring)."""
        trusted = load_trusted_keys(self._config.registry.trusted_keys)
        scratch = self.storage_dir / UPLOAD_SCRATCH
        with opened_upload(source, scratch) as root:
            checked = await asyncio.to_thread(check_bundle, root, trusted)
            name, version = checked.manifest.name, checked.manifest.version
            folder = self.storage_dir / name / version
            packed = await asyncio.to_thread(pack, checked, folder)
        try:
            async with store.registry_lock(self._engine), self._engine.begin() as conn:
                existing = await store.get_bundle(conn, name, version)
                if existing is not None:
                    if existing.archive_sha256 != packed.sha256:
                        raise BundleConflictError(
                            f"{name} {version} is already stored with different content (sha256 "
                            f"{existing.archive_sha256[:16]}..., this upload {packed.sha256[:16]}...): versions "
                            "are immutable; give the changed bundle a new version"
                        )
                    stored = self.archive_path(existing)
                    if not stored.is_file() or stored.stat().st_size != existing.archive_size:
                        _LOGGER.warning("the stored tar of %s %s was missing or damaged; restored", name, version)
                        install(packed, stored)
                    return UploadResult(existing, created=False)
                install(packed, folder / ARCHIVE_NAME)
                await store.insert_bundle(conn, checked, sha256=packed.sha256, size=packed.size,
                                          storage_path=f"{name}/{version}/{ARCHIVE_NAME}")
                record = await store.get_bundle(conn, name, version)
        except SQLAlchemyError as err:
            raise translate(err, f"storing {name} {version}") from err
        finally:
            discard(packed)
        assert record is not None
        _LOGGER.info("stored %s %s (%d bytes, sha256 %s)", name, version, record.archive_size, record.archive_sha256)
        return UploadResult(record, created=True)

    async def bundle(self, name: str, version: str) -> BundleRecord:
        """A stored bundle, or BundleNotFoundError."""
        try:
            async with self._engine.connect() as conn:
                record = await store.get_bundle(conn, name, version)
        except SQLAlchemyError as err:
            raise translate(err, "reading the registry") from err
        if record is None:
            raise BundleNotFoundError(f"no bundle {name} {version} is stored (see `central-sync models list`)")
        return record

    # ---- rollouts -------------------------------------------------------------------------------------------
    async def rollout(
        self, name: str, version: str, target: RolloutTarget, *, shadow: bool = False,
        sample: float = DEFAULT_SHADOW_SAMPLE,
    ) -> Change:
        """Start a rollout of a stored bundle; announce the new state."""
        safe_segment(name, "model name")
        async with store.registry_lock(self._engine):
            try:
                async with self._engine.begin() as conn:
                    if await store.get_bundle(conn, name, version) is None:
                        raise BundleNotFoundError(
                            f"no bundle {name} {version} is stored: upload it first (`central-sync models upload`)"
                        )
                    active = await store.list_rollouts(conn)
                    node_shops = await store.node_shops(conn)
                    self._warn_unknown(target, node_shops)
                    new_id = await store.insert_rollout(conn, name, version, target, shadow=shadow,
                                                        sample=sample if shadow else DEFAULT_SHADOW_SAMPLE)
                    ended = to_supersede(name, version, target, shadow, active, node_shops)
                    await store.end_rollouts(conn, ended, SUPERSEDED, superseded_by=new_id)
                    announced = await self._bump(conn)
            except SQLAlchemyError as err:
                raise translate(err, f"rolling out {name} {version}") from err
            what = f"rollout {new_id} of {name} {version}"
            notified = await self._announce(announced, node_shops, what)
        _LOGGER.info("%s (%s%s) is active; it ended %s; revision %d", what, describe(target),
                     ", shadow" if shadow else "", ended or "nothing", announced.revision)
        return Change(announced, new_id, ended=ended, nodes_notified=notified)

    async def rollback(self, name: str, *, shadow: bool = False) -> Change:
        """End the newest active (serving, or shadow) rollout of NAME, restoring what it superseded; announce."""
        kind = "shadow" if shadow else "serving"
        async with store.registry_lock(self._engine):
            try:
                async with self._engine.begin() as conn:
                    victim = to_roll_back(name, await store.list_rollouts(conn), shadow=shadow)
                    if victim is None:
                        raise NothingToRollBackError(f"{name} has no active {kind} rollout to roll back")
                    await store.end_rollouts(conn, [victim.rollout_id], ROLLED_BACK)
                    restored = await store.restore_superseded(conn, victim.rollout_id)
                    node_shops = await store.node_shops(conn)
                    announced = await self._bump(conn)
            except SQLAlchemyError as err:
                raise translate(err, f"rolling back {name}") from err
            what = f"the rollback of rollout {victim.rollout_id} ({victim.label})"
            notified = await self._announce(announced, node_shops, what)
        _LOGGER.info("rolled back rollout %d (%s); restored %s; revision %d", victim.rollout_id, victim.label,
                     restored or "nothing", announced.revision)
        return Change(announced, victim.rollout_id, ended=[victim.rollout_id], restored=restored,
                      nodes_notified=notified)

    async def announce(self) -> Change:
        """Publish the current state again (same revision), e.g. after a failed announcement."""
        async with store.registry_lock(self._engine):
            try:
                async with self._engine.connect() as conn:
                    revision, at, epoch = await store.current_revision(conn)
                    announced = announcement(revision, at, await store.list_rollouts(conn), epoch)
                    node_shops = await store.node_shops(conn)
            except SQLAlchemyError as err:
                raise translate(err, "reading the registry") from err
            notified = await self._announce(announced, node_shops, f"revision {revision}")
        return Change(announced, None, nodes_notified=notified)

    async def _bump(self, conn: AsyncConnection) -> ModelAnnouncement:
        revision, at, epoch = await store.bump_revision(conn)
        return announcement(revision, at, await store.list_rollouts(conn), epoch)

    async def _announce(self, announced: ModelAnnouncement, node_shops: dict[str, str], what: str) -> int:
        topics = node_topics(node_shops)
        try:
            await self._publisher(payload(announced), topics)
        except AnnounceError as err:
            raise AnnounceError(
                f"{what} is saved as revision {announced.revision} but was not announced: {err.message}. The serving "
                "central announces it again when it reconnects to the broker, or run `central-sync models announce`"
            ) from err
        return len(topics)

    @staticmethod
    def _warn_unknown(target: RolloutTarget, node_shops: dict[str, str]) -> None:
        if target.kind == "node" and target.node_id not in node_shops:
            _LOGGER.warning("node %s has never synced with central; it gets the rollout when it connects",
                            target.node_id)
        unknown = sorted(set(target.shops) - set(node_shops.values()))
        if unknown:
            _LOGGER.warning("no node of shop(s) %s has synced with central yet", ", ".join(unknown))

    # ---- reading ----------------------------------------------------------------------------------------------
    async def overview(self, *, history: bool = False, shops: Collection[str] | None = None) -> Overview:
        """Bundles and rollouts; `shops` limits rollouts (and node reports) to those that reach these shops."""
        try:
            async with self._engine.connect() as conn:
                revision, _at, _epoch = await store.current_revision(conn)
                bundles = await store.list_bundles(conn)
                records = await store.list_rollouts(conn, active_only=not history)
                if shops is not None:
                    node_shops = await store.node_shops(conn)
                    records = [r for r in records if any(includes_shop(r.target, s, node_shops) for s in shops)]
                labels = sorted({r.label for r in records})
                agreement = await shadow_agreement(conn, labels, shops)
                running = await nodes_reporting(conn, labels, shops)
        except SQLAlchemyError as err:
            raise translate(err, "reading the registry") from err
        return Overview(revision, bundles, records, agreement, running)

