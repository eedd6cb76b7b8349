"""Model rollouts: what central announces over MQTT and how a node decides which announced model is its own.

Central keeps the desired state: a list of active rollouts, each one model bundle (name, version) aimed at all
shops, a list of shops, a percentage of nodes, or one node. Every change is published as a `ModelAnnouncement`
with a higher `revision`: retained on `zakpos/v1/models/announce` (a node that connects later gets it at once)
and, for each known node a rollout targets, on its own `.../down/models` (queued by the broker in the node's
persistent session while it is offline). A node applies an announcement only if its revision is higher than the
last one it applied, so the two copies of the same state never fight.

A node serves at most one model per engine: the first serving rollout of the newest announcement that targets it.
An empty announcement (or none targeting the node) means "serve your embedded default". A `shadow` rollout is
loaded beside the serving model and run on a sample of requests without serving its results; the node reports
its agreement with the serving model before an operator promotes it: one metrics body with two points of the same
`recorded_at`, `shadow_agreement` (share of compared lines read identically) and `shadow_lines` (lines compared),
both cumulative since the shadow model was loaded, model_name `NAME@VERSION`.

A node reports what it serves in its retained status (`NodeStatus.model_versions`): each language's engine
(`"en": "trocr"`), and for a bundle from a rollout `"trocr": "NAME@VERSION"` (and `"trocr-shadow"` for a shadow).

Percent rollouts pick nodes by a stable hash of (model name, node id), so the same nodes stay in as the
percentage grows and every node computes its own membership without asking central.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MODELS_SCHEMA_VERSION = 1
#: A model name or version: also a folder name on nodes and central and a URL segment, so it may not start with a
#: dot (no `.`, `..` or hidden folders).
NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"
VERSION_PATTERN = r"^[A-Za-z0-9_+-][A-Za-z0-9.+_-]*$"
BUNDLE_PATH_PATTERN = r"^/api/v1/models/" + NAME_PATTERN[1:-1] + "/" + VERSION_PATTERN[1:-1] + r"/bundle\.tar$"
#: URL path (on central's HTTP API) where a stored bundle is served as an uncompressed tar; supports Range.
BUNDLE_PATH_TEMPLATE = "/api/v1/models/{name}/{version}/bundle.tar"
#: Node-side error code of a model update that failed (download, verification, self-test, error-rate rollback).
MODEL_UPDATE_FAILED = "MODEL_UPDATE_FAILED"
#: Metric names a node reports while a shadow model runs (model_name = "NAME@VERSION").
SHADOW_AGREEMENT_METRIC = "shadow_agreement"
SHADOW_LINES_METRIC = "shadow_lines"

TargetKind = Literal["all", "shops", "percent", "node"]
#: A registry epoch (see ModelAnnouncement.epoch); ordered as text.
REGISTRY_EPOCH_PATTERN = r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{16}$"


def supersedes(epoch: str | None, revision: int, than_epoch: str | None, than_revision: int) -> bool:
    """Whether an announcement (epoch, revision) is newer than the one applied last: a later registry epoch wins
    whatever its revision, an earlier one never does, within one epoch the higher revision wins."""
    if (epoch or "") != (than_epoch or ""):
        return (epoch or "") > (than_epoch or "")
    return revision > than_revision


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def bundle_path(name: str, version: str) -> str:
    """The HTTP path of a bundle's tar on central."""
    return BUNDLE_PATH_TEMPLATE.format(name=name, version=version)


def rollout_bucket(name: str, node_id: str) -> int:
    """0-99: a node is in a `percent` rollout of `name` when its bucket is below the percentage."""
    digest = hashlib.sha256(f"{name}\0{node_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


class BundleLocation(_Strict):
    """Where a node downloads a bundle and how it checks the download before unpacking it."""

    path: str = Field(pattern=BUNDLE_PATH_PATTERN,
                      description="Path on central's HTTP API (see BUNDLE_PATH_TEMPLATE).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the whole tar.")
    size: int = Field(gt=0, description="Bytes of the tar.")


class RolloutTarget(_Strict):
    """Which nodes a rollout is for."""

    kind: TargetKind
    shops: tuple[str, ...] = Field((), description="Shop ids, for kind=shops.")
    percent: int | None = Field(None, ge=0, le=100, description="Share of nodes, for kind=percent.")
    node_id: str | None = Field(None, description="The one node, for kind=node.")

    @model_validator(mode="after")
    def _complete(self) -> RolloutTarget:
        if self.kind == "shops" and not self.shops:
            raise ValueError("a shops target lists at least one shop")
        if self.kind == "percent" and self.percent is None:
            raise ValueError("a percent target needs percent")
        if self.kind == "node" and not self.node_id:
            raise ValueError("a node target needs node_id")
        return self

    def includes(self, name: str, shop_id: str, node_id: str) -> bool:
        """Whether the node `node_id` of shop `shop_id` is targeted (for a rollout of model `name`)."""
        if self.kind == "all":
            return True
        if self.kind == "shops":
            return shop_id in self.shops
        if self.kind == "node":
            return node_id == self.node_id
        return rollout_bucket(name, node_id) < (self.percent or 0)


class ModelRollout(_Strict):
    """One active rollout of one bundle."""

    rollout_id: int = Field(ge=1, description="Central's id of the rollout.")
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    version: str = Field(min_length=1, max_length=50, pattern=VERSION_PATTERN)
    engine: Literal["trocr"] = Field(description="The node engine that loads the bundle.")
    languages: tuple[str, ...] = Field(min_length=1, description="Languages the model reads (it serves these).")
    bundle: BundleLocation
    target: RolloutTarget
    shadow: bool = Field(False, description="Run beside the serving model on a sample; never serve its results.")
    shadow_sample: float = Field(0.1, gt=0, le=1, description="Share of requests a shadow model also reads.")
    created_at: datetime

    @property
    def label(self) -> str:
        """NAME@VERSION, as nodes report it."""
        return f"{self.name}@{self.version}"


class ModelAnnouncement(_Strict):
    """The complete desired model state (retained on models/announce; per node on down/models)."""

    schema_version: int = Field(MODELS_SCHEMA_VERSION, ge=1)
    revision: int = Field(ge=0, description="Grows with every change at central; nodes ignore older revisions.")
    epoch: str | None = Field(
        None, pattern=REGISTRY_EPOCH_PATTERN,
        description="Names central's registry (made with it: UTC time, then random digits). A registry rebuilt "
        "from scratch counts revisions from 1 again under a later epoch; None from centrals older than epochs.",
    )
    rollouts: tuple[ModelRollout, ...] = Field((), description="Active rollouts, newest first.")
    at: datetime

    def serving_for(self, shop_id: str, node_id: str, engine: str = "trocr") -> ModelRollout | None:
        """The rollout whose model this node should serve (newest first), or None for the embedded default."""
        return next((r for r in self.rollouts if not r.shadow and r.engine == engine
                     and r.target.includes(r.name, shop_id, node_id)), None)

    def shadow_for(self, shop_id: str, node_id: str, engine: str = "trocr") -> ModelRollout | None:
        """The rollout this node should run in shadow mode, if any."""
        return next((r for r in self.rollouts if r.shadow and r.engine == engine
                     and r.target.includes(r.name, shop_id, node_id)), None)


class NodeErrorLog(_Strict):
    """An `errors` envelope body that is not a job event: a node-level failure (e.g. a model update).

    Central stores it in `ocr_error_logs` with no job id.
    """

    log_kind: Literal["node_error"] = "node_error"
    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=4000)
    model: str | None = Field(None, max_length=200, description="NAME@VERSION the error is about, if any.")
    at: datetime
