"""The model registry's SQL (SQLAlchemy Core on model_bundles, rollouts, model_state, nodes). No policy here:
central_sync/registry.py decides, central_sync/rollout_plan.py holds the rules.

Every change runs under the registry lock (a PostgreSQL advisory lock held from before the change's transaction
until its announcement is published), so changes from several operators or replicas are applied, numbered and
announced one at a time, in order.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central_sync.bundle_check import CheckedBundle
from central_sync.db.models import model_bundles, model_state, nodes, rollouts
from central_sync.rollout_plan import ACTIVE, BundleRecord, RolloutRecord, target_columns, target_of
from shared_models.model_updates import RolloutTarget

#: pg_advisory_lock key of registry changes ("ZKMODL").
REGISTRY_LOCK_KEY = 0x5A4B4D4F444C
#: The revision and time of a registry that has never announced anything.
NEVER: tuple[int, datetime, str | None] = (0, datetime(1970, 1, 1, tzinfo=UTC), None)


@contextlib.asynccontextmanager
async def registry_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the registry lock (session-level, on a connection of its own) for the body."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": REGISTRY_LOCK_KEY})
        await conn.commit()
        try:
            yield
        finally:
            try:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": REGISTRY_LOCK_KEY})
                await conn.commit()
            except SQLAlchemyError:  # the connection is gone, and the lock with it; never pool it again
                await conn.invalidate()


_BUNDLE_COLUMNS = [c for c in model_bundles.c if c.name != "manifest"]


def _bundle(row: Any, prefix: str = "") -> BundleRecord:
    values = {c.name: getattr(row, prefix + c.name) for c in _BUNDLE_COLUMNS}
    values["languages"] = tuple(values["languages"])
    return BundleRecord(**values)


async def get_bundle(conn: AsyncConnection, name: str, version: str) -> BundleRecord | None:
    """The stored bundle NAME VERSION, or None."""
    row = (await conn.execute(
        select(*_BUNDLE_COLUMNS).where(model_bundles.c.name == name, model_bundles.c.version == version)
    )).one_or_none()
    return _bundle(row) if row is not None else None


async def list_bundles(conn: AsyncConnection) -> list[BundleRecord]:
    """Every stored bundle, by name then upload time."""
    query = select(*_BUNDLE_COLUMNS).order_by(model_bundles.c.name, model_bundles.c.uploaded_at,
                                              model_bundles.c.version)
    return [_bundle(row) for row in await conn.execute(query)]


async def insert_bundle(
    conn: AsyncConnection, bundle: CheckedBundle, *, sha256: str, size: int, storage_path: str
) -> bool:
    """Record a stored bundle; False when NAME VERSION was recorded meanwhile (the caller re-reads it)."""
    manifest = bundle.manifest
    statement = pg_insert(model_bundles).values(
        name=manifest.name, version=manifest.version, engine=manifest.engine, languages=list(manifest.languages),
        manifest=manifest.model_dump(mode="json"), signer_key_id=bundle.key_id,
        signature_verified=bundle.signature_verified, archive_sha256=sha256, archive_size=size,
        storage_path=storage_path,
    ).on_conflict_do_nothing(index_elements=[model_bundles.c.name, model_bundles.c.version])
    result = await conn.execute(statement)
    return bool(result.rowcount)


async def list_rollouts(conn: AsyncConnection, *, active_only: bool = True) -> list[RolloutRecord]:
    """Rollouts (only the active ones unless asked), newest first, each with its bundle."""
    r, b = rollouts, model_bundles
    query = (
        select(r, *[c.label(f"b_{c.name}") for c in _BUNDLE_COLUMNS])
        .join(b, (b.c.name == r.c.name) & (b.c.version == r.c.version))
        .order_by(r.c.id.desc())
    )
    if active_only:
        query = query.where(r.c.state == ACTIVE)
    records = []
    for row in await conn.execute(query):
        records.append(RolloutRecord(
            rollout_id=row.id, name=row.name, version=row.version,
            target=target_of(row.target_kind, row.target_shops, row.target_percent, row.target_node_id),
            shadow=row.shadow, shadow_sample=row.shadow_sample, state=row.state, superseded_by=row.superseded_by,
            created_at=row.created_at, ended_at=row.ended_at, bundle=_bundle(row, "b_"),
        ))
    return records


async def insert_rollout(
    conn: AsyncConnection, name: str, version: str, target: RolloutTarget, *, shadow: bool, sample: float
) -> int:
    """A new active rollout; returns its id."""
    statement = rollouts.insert().values(
        name=name, version=version, shadow=shadow, shadow_sample=sample, state=ACTIVE, **target_columns(target)
    ).returning(rollouts.c.id)
    return int((await conn.execute(statement)).scalar_one())


async def end_rollouts(
    conn: AsyncConnection, ids: Sequence[int], state: str, *, superseded_by: int | None = None
) -> None:
    """Mark active rollouts ended (`superseded` by a newer one, or `rolled_back`)."""
    if ids:
        await conn.execute(
            update(rollouts).where(rollouts.c.id.in_(ids), rollouts.c.state == ACTIVE)
            .values(state=state, superseded_by=superseded_by, ended_at=func.now())
        )


async def restore_superseded(conn: AsyncConnection, by: int) -> list[int]:
    """Make active again the rollouts that rollout `by` superseded; returns their ids."""
    result = await conn.execute(
        update(rollouts).where(rollouts.c.superseded_by == by)
        .values(state=ACTIVE, superseded_by=None, ended_at=None).returning(rollouts.c.id)
    )
    return sorted(int(row.id) for row in result)


def new_epoch() -> str:
    """A registry epoch: now (UTC, to the second) and 16 random hex digits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(8)}"


async def bump_revision(conn: AsyncConnection) -> tuple[int, datetime, str | None]:
    """The next announcement revision, the change's time and the registry's epoch (the one model_state row,
    created with a new epoch when missing)."""
    insert = pg_insert(model_state).values(id=1, revision=1, changed_at=func.now(), epoch=new_epoch())
    statement = insert.on_conflict_do_update(
        index_elements=[model_state.c.id],
        set_={"revision": model_state.c.revision + 1, "changed_at": func.now(),
              "epoch": func.coalesce(model_state.c.epoch, insert.excluded.epoch)},
    ).returning(model_state.c.revision, model_state.c.changed_at, model_state.c.epoch)
    row = (await conn.execute(statement)).one()
    return int(row.revision), row.changed_at, row.epoch


async def current_revision(conn: AsyncConnection) -> tuple[int, datetime, str | None]:
    """The revision, time and epoch of the last change ((0, 1970, None) when there was none)."""
    row = (await conn.execute(
        select(model_state.c.revision, model_state.c.changed_at, model_state.c.epoch))).one_or_none()
    return (int(row.revision), row.changed_at, row.epoch) if row is not None else NEVER


async def node_shops(conn: AsyncConnection) -> dict[str, str]:
    """node id -> shop id of every node central has heard from."""
    return {row.node_id: row.shop_id for row in await conn.execute(select(nodes.c.node_id, nodes.c.shop_id))}
