"""The registry (central_sync/registry.py) against a real PostgreSQL, with the broker replaced by a recorder:
immutable uploads, the supersede / rollback chain, revisions, shadow promotion, a failed announcement, and the
node reports (`nodes running it`, weighted shadow agreement) of the overview."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.config import CentralConfig
from central_sync.db.engine import create_engine
from central_sync.errors import (
    AnnounceError,
    BundleConflictError,
    BundleNotFoundError,
    BundleSignatureError,
    NothingToRollBackError,
)
from central_sync.registry import Registry
from shared_models.model_updates import REGISTRY_EPOCH_PATTERN, ModelAnnouncement, RolloutTarget
from tests.central_sync.bundles import make_bundle, new_key
from tests.central_sync.harness import query, scalar

pytestmark = pytest.mark.integration

ALL = RolloutTarget(kind="all")


class Recorder:
    """Stands in for the broker: keeps what would have been published."""

    def __init__(self) -> None:
        self.sent: list[tuple[ModelAnnouncement, list[str]]] = []
        self.fail = False

    async def __call__(self, data: bytes, topics: list[str]) -> None:
        if self.fail:
            raise AnnounceError("cannot reach the MQTT broker at mqtt://nowhere")
        self.sent.append((ModelAnnouncement.model_validate_json(data), topics))

    @property
    def last(self) -> ModelAnnouncement:
        return self.sent[-1][0]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def registry(make_config: Callable[..., CentralConfig], recorder: Recorder) -> AsyncIterator[Registry]:
    config = make_config()
    engine = create_engine(config.database)
    yield Registry(config, engine, publisher=recorder)
    await engine.dispose()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


async def _upload(registry: Registry, tmp_path: Path, key: Ed25519PrivateKey, version: str, name: str = "m") -> None:
    await registry.upload(make_bundle(tmp_path / f"{name}-{version}", key, name=name, version=version))


async def test_uploads_are_stored_once_and_versions_are_immutable(
    registry: Registry, db_url: str, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    bundle = make_bundle(tmp_path / "b", key)
    first = await registry.upload(bundle)
    assert first.created and first.bundle.storage_path == "demo-trocr/1.0.0/bundle.tar"
    stored = registry.storage_dir / "demo-trocr" / "1.0.0" / "bundle.tar"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == first.bundle.archive_sha256
    assert stored.stat().st_size == first.bundle.archive_size and not first.bundle.signature_verified
    manifest = json.loads(await scalar(db_url, "SELECT manifest::text FROM model_bundles"))
    assert manifest["name"] == "demo-trocr" and len(manifest["files"]) == 5
    assert not [p for p in stored.parent.iterdir() if p.name != "bundle.tar"], "no partial file is left behind"

    again = await registry.upload(bundle)
    assert not again.created and again.bundle == first.bundle

    changed = make_bundle(tmp_path / "changed", key, salt=b"retrained")
    with pytest.raises(BundleConflictError, match="versions are immutable"):
        await registry.upload(changed)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == first.bundle.archive_sha256

    stored.unlink()  # the storage volume lost it: the same upload puts it back
    assert not (await registry.upload(bundle)).created
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == first.bundle.archive_sha256

    archive = tmp_path / "v2.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(make_bundle(tmp_path / "v2", key, version="2.0.0"), arcname="v2")
    assert (await registry.upload(archive)).created
    assert await scalar(db_url, "SELECT count(*) FROM model_bundles") == 2
    assert not (registry.storage_dir / ".uploads").exists() or not any((registry.storage_dir / ".uploads").iterdir())


async def test_trusted_keys_are_enforced_at_upload(
    make_config: Callable[..., CentralConfig], recorder: Recorder, db_url: str, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    _mine, mine_pub = new_key(tmp_path / "keys", "mine")
    config = make_config(registry={"trusted_keys": [str(mine_pub)]})
    engine = create_engine(config.database)
    try:
        registry = Registry(config, engine, publisher=recorder)
        with pytest.raises(BundleSignatureError, match="not one of registry.trusted_keys"):
            await registry.upload(make_bundle(tmp_path / "foreign", key))
        assert await scalar(db_url, "SELECT count(*) FROM model_bundles") == 0
        verified = await registry.upload(make_bundle(tmp_path / "mine", _mine))
        assert verified.bundle.signature_verified
    finally:
        await engine.dispose()


async def test_supersede_and_rollback_chain(
    registry: Registry, recorder: Recorder, db_url: str, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    for version in ("1.0", "2.0"):
        await _upload(registry, tmp_path, key, version)
    await query(db_url, "INSERT INTO nodes (node_id, shop_id) VALUES ('n1', 's1'), ('n2', 's2')")

    fleet = await registry.rollout("m", "1.0", ALL)
    assert fleet.announced.revision == 1 and [r.version for r in fleet.announced.rollouts] == ["1.0"]
    assert recorder.sent[-1][1] == ["zakpos/v1/s1/n1/down/models", "zakpos/v1/s2/n2/down/models"]
    canary = await registry.rollout("m", "2.0", RolloutTarget(kind="percent", percent=10))
    assert canary.ended == [] and [r.version for r in recorder.last.rollouts] == ["2.0", "1.0"]
    everyone = await registry.rollout("m", "2.0", ALL)
    assert sorted(everyone.ended) == [fleet.rollout_id, canary.rollout_id]
    assert [r.rollout_id for r in recorder.last.rollouts] == [everyone.rollout_id]

    undo = await registry.rollback("m")
    assert undo.rollout_id == everyone.rollout_id and undo.restored == sorted([fleet.rollout_id, canary.rollout_id])
    assert [r.rollout_id for r in recorder.last.rollouts] == [canary.rollout_id, fleet.rollout_id]
    await registry.rollback("m")
    assert [r.version for r in recorder.last.rollouts] == ["1.0"]
    await registry.rollback("m")
    assert recorder.last.rollouts == () and recorder.last.revision == 6
    with pytest.raises(NothingToRollBackError, match="no active serving rollout"):
        await registry.rollback("m")
    with pytest.raises(BundleNotFoundError, match="upload it first"):
        await registry.rollout("m", "9.9", ALL)
    assert [a.revision for a, _topics in recorder.sent] == [1, 2, 3, 4, 5, 6]
    epochs = {a.epoch for a, _topics in recorder.sent}
    assert len(epochs) == 1 and re.fullmatch(REGISTRY_EPOCH_PATTERN, str(next(iter(epochs)))), epochs
    states = await query(db_url, "SELECT id, state, ended_at IS NOT NULL AS ended FROM rollouts ORDER BY id")
    assert [(r["state"], r["ended"]) for r in states] == [("rolled_back", True)] * 3


async def test_a_shadow_rollout_is_promoted_and_the_promotion_undone(
    registry: Registry, recorder: Recorder, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    for version in ("1.0", "2.0", "3.0"):
        await _upload(registry, tmp_path, key, version)
    await registry.rollout("m", "1.0", ALL)
    shadow = await registry.rollout("m", "2.0", RolloutTarget(kind="shops", shops=("s1",)), shadow=True, sample=0.5)
    newest = recorder.last.rollouts[0]
    assert newest.shadow and newest.shadow_sample == 0.5 and newest.target.shops == ("s1",)
    assert recorder.last.serving_for("s1", "n1").version == "1.0"
    assert recorder.last.shadow_for("s1", "n1").version == "2.0"
    assert recorder.last.shadow_for("s2", "n2") is None
    newer_shadow = await registry.rollout("m", "3.0", ALL, shadow=True)
    assert newer_shadow.ended == [shadow.rollout_id]
    await registry.rollback("m", shadow=True)  # back to shadowing 2.0 in s1
    promoted = await registry.rollout("m", "2.0", ALL)
    assert shadow.rollout_id in promoted.ended and not any(r.shadow for r in recorder.last.rollouts)
    await registry.rollback("m")
    assert [(r.version, r.shadow) for r in recorder.last.rollouts] == [("2.0", True), ("1.0", False)]


async def test_a_change_that_cannot_be_announced_is_saved_and_says_so(
    registry: Registry, recorder: Recorder, db_url: str, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    await _upload(registry, tmp_path, key, "1.0")
    recorder.fail = True
    with pytest.raises(AnnounceError, match="saved as revision 1 but was not announced.*models announce"):
        await registry.rollout("m", "1.0", ALL)
    assert await scalar(db_url, "SELECT state FROM rollouts") == "active"
    recorder.fail = False
    again = await registry.announce()
    assert again.announced.revision == 1 and [r.version for r in again.announced.rollouts] == ["1.0"]


async def test_overview_reports_nodes_running_a_version_and_weighted_shadow_agreement(
    registry: Registry, db_url: str, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    for version in ("1.0", "2.0"):
        await _upload(registry, tmp_path, key, version)
    await registry.rollout("m", "1.0", ALL)
    await registry.rollout("m", "2.0", RolloutTarget(kind="shops", shops=("s1",)), shadow=True)
    await query(db_url, """INSERT INTO nodes (node_id, shop_id, model_version, model_versions) VALUES
        ('n1', 's1', NULL, '{"trocr": "m@1.0", "trocr-shadow": "m@2.0"}'), ('n2', 's2', 'm@1.0', NULL),
        ('n3', 's2', NULL, '{"ppocr": "v6"}')""")
    now = datetime.now(UTC)
    points = [("n1", "s1", "shadow_agreement", 0.5, now - timedelta(hours=1)),
              ("n1", "s1", "shadow_lines", 40, now - timedelta(hours=1)),
              ("n1", "s1", "shadow_agreement", 0.9, now), ("n1", "s1", "shadow_lines", 100, now),
              ("n4", "s1", "shadow_agreement", 0.6, now), ("n4", "s1", "shadow_lines", 300, now)]
    for node_id, shop_id, metric, value, at in points:
        await query(db_url, "INSERT INTO ocr_model_metrics (node_id, shop_id, model_name, metric_name, value, "
                    "recorded_at) VALUES ($1, $2, 'm@2.0', $3, $4, $5)", node_id, shop_id, metric, value, at)
    doc = (await registry.overview()).as_json()
    assert doc["revision"] == 2 and [b["version"] for b in doc["bundles"]] == ["1.0", "2.0"]
    by_version = {r["version"]: r for r in doc["rollouts"]}
    assert by_version["1.0"]["nodes_reporting"] == 2 and by_version["2.0"]["nodes_reporting"] == 1
    agreement: dict[str, Any] = by_version["2.0"]["shadow_agreement"]
    assert agreement == {"value": 0.675, "nodes": 2, "lines": 400, "weighted": True}
    assert by_version["1.0"]["shadow_agreement"]["value"] is None
    shop2 = (await registry.overview(shops=["s2"])).as_json()
    assert [r["version"] for r in shop2["rollouts"]] == ["1.0"] and shop2["rollouts"][0]["nodes_reporting"] == 1
    history = (await registry.overview(history=True)).as_json()
    assert len(history["rollouts"]) == 2
