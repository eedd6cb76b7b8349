"""The rollout rules, pure (no I/O): what a new rollout supersedes, what a rollback restores, and the announcement.

- A new SERVING rollout of NAME supersedes the active serving rollouts of NAME whose nodes it covers entirely
  (`covers`): `--all` covers everything; a shop list covers smaller shop lists and single nodes of those shops; a
  larger percentage covers a smaller one (the buckets of one name are nested, see
  shared_models.model_updates.rollout_bucket); a node covers itself. Rollouts it does not cover stay active
  BELOW it (the announcement lists newest first, and a node serves the first serving rollout that targets it):
  `rollout m 2.0 --percent 10` on top of `rollout m 1.0 --all` moves 10% of the nodes to 2.0 and leaves the rest
  on 1.0. It also ends the active shadow rollouts of the same NAME and VERSION: promoting a shadowed model ends
  its shadow run.
- A new SHADOW rollout of NAME supersedes every earlier active shadow rollout of NAME (one experiment at a time).
- A rollback ends the newest active rollout of NAME (serving, or shadow when asked) as `rolled_back` and makes
  active again what that rollout superseded, so rollback is an exact undo; run it again to undo the one before.
  With nothing left, nodes fall back to their embedded default model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared_models.model_updates import (
    BundleLocation,
    ModelAnnouncement,
    ModelRollout,
    RolloutTarget,
    bundle_path,
)

ACTIVE, ROLLED_BACK, SUPERSEDED = "active", "rolled_back", "superseded"
#: Share of requests a shadow model also reads when --sample is not given (ModelRollout's default).
DEFAULT_SHADOW_SAMPLE = 0.1


@dataclass(frozen=True)
class BundleRecord:
    """One row of model_bundles, without the manifest document."""

    name: str
    version: str
    engine: str
    languages: tuple[str, ...]
    signer_key_id: str
    signature_verified: bool
    archive_sha256: str
    archive_size: int
    storage_path: str
    uploaded_at: datetime

    @property
    def label(self) -> str:
        """NAME@VERSION."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class RolloutRecord:
    """One row of rollouts, joined with its bundle."""

    rollout_id: int
    name: str
    version: str
    target: RolloutTarget
    shadow: bool
    shadow_sample: float
    state: str
    superseded_by: int | None
    created_at: datetime
    ended_at: datetime | None
    bundle: BundleRecord

    @property
    def label(self) -> str:
        """NAME@VERSION, as nodes report it."""
        return f"{self.name}@{self.version}"

    def announced(self) -> ModelRollout:
        """The rollout as nodes receive it."""
        return ModelRollout(
            rollout_id=self.rollout_id,
            name=self.name,
            version=self.version,
            engine=self.bundle.engine,  # only trocr bundles are stored (manifest)
            languages=self.bundle.languages,
            bundle=BundleLocation(
                path=bundle_path(self.name, self.version), sha256=self.bundle.archive_sha256,
                size=self.bundle.archive_size,
            ),
            target=self.target,
            shadow=self.shadow,
            shadow_sample=self.shadow_sample,
            created_at=self.created_at,
        )


def covers(new: RolloutTarget, old: RolloutTarget, node_shops: Mapping[str, str] | None = None) -> bool:
    """Whether every node `old` targets is also targeted by `new` (for rollouts of the same model name)."""
    if new.kind == "all":
        return True
    if new.kind == "shops":
        if old.kind == "shops":
            return set(old.shops) <= set(new.shops)
        if old.kind == "node" and node_shops is not None and old.node_id is not None:
            return node_shops.get(old.node_id) in new.shops
        return False
    if new.kind == "percent":
        return old.kind == "percent" and (old.percent or 0) <= (new.percent or 0)
    return old.kind == "node" and old.node_id == new.node_id


def to_supersede(
    name: str,
    version: str,
    target: RolloutTarget,
    shadow: bool,
    active: Iterable[RolloutRecord],
    node_shops: Mapping[str, str] | None = None,
) -> list[int]:
    """Ids of the active rollouts a new rollout of NAME VERSION ends (see the module docstring)."""
    ended = []
    for record in active:
        if record.name != name or record.state != ACTIVE:
            continue
        if shadow:
            if record.shadow:
                ended.append(record.rollout_id)
        elif record.shadow:
            if record.version == version:
                ended.append(record.rollout_id)
        elif covers(target, record.target, node_shops):
            ended.append(record.rollout_id)
    return ended


def to_roll_back(name: str, active: Iterable[RolloutRecord], *, shadow: bool = False) -> RolloutRecord | None:
    """The newest active rollout of NAME of the asked kind (serving unless `shadow`), or None."""
    candidates = [r for r in active if r.name == name and r.state == ACTIVE and r.shadow == shadow]
    return max(candidates, key=lambda r: r.rollout_id, default=None)


def announcement(revision: int, at: datetime, active: Sequence[RolloutRecord],
                 epoch: str | None = None) -> ModelAnnouncement:
    """The complete desired state: every active rollout, newest first."""
    ordered = sorted((r for r in active if r.state == ACTIVE), key=lambda r: r.rollout_id, reverse=True)
    return ModelAnnouncement(revision=revision, epoch=epoch, rollouts=tuple(r.announced() for r in ordered), at=at)


def includes_shop(target: RolloutTarget, shop_id: str, node_shops: Mapping[str, str]) -> bool:
    """Whether a rollout may reach nodes of `shop_id` (all and percent rollouts reach every shop)."""
    if target.kind in ("all", "percent"):
        return True
    if target.kind == "shops":
        return shop_id in target.shops
    return node_shops.get(target.node_id or "") == shop_id


def describe(target: RolloutTarget) -> str:
    """A short text of a target: all, shops a,b, 10% of nodes, node n-1."""
    if target.kind == "all":
        return "all"
    if target.kind == "shops":
        return "shops " + ",".join(target.shops)
    if target.kind == "percent":
        return f"{target.percent}% of nodes"
    return f"node {target.node_id}"


def target_columns(target: RolloutTarget) -> dict[str, object]:
    """The rollouts columns of a target."""
    return {
        "target_kind": target.kind,
        "target_shops": list(target.shops) if target.kind == "shops" else None,
        "target_percent": target.percent if target.kind == "percent" else None,
        "target_node_id": target.node_id if target.kind == "node" else None,
    }


def target_of(kind: str, shops: Sequence[str] | None, percent: int | None, node_id: str | None) -> RolloutTarget:
    """The target stored in a rollouts row."""
    return RolloutTarget(kind=kind, shops=tuple(shops or ()), percent=percent, node_id=node_id)
