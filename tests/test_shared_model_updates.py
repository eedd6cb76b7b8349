"""The model rollout contract: who a rollout targets, which rollout a node serves, names that stay folder-safe."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared_models.model_updates import (
    BundleLocation,
    ModelAnnouncement,
    ModelRollout,
    RolloutTarget,
    bundle_path,
    rollout_bucket,
)

SHA = "a" * 64


def make(rollout_id: int, version: str, target: RolloutTarget, shadow: bool = False,
         name: str = "trocr-small") -> ModelRollout:
    return ModelRollout(rollout_id=rollout_id, name=name, version=version, engine="trocr", languages=("en",),
                        bundle=BundleLocation(path=bundle_path(name, version), sha256=SHA, size=10),
                        target=target, shadow=shadow, created_at=datetime.now(UTC))


def test_targets() -> None:
    assert RolloutTarget(kind="all").includes("m", "shop-a", "n1")
    shops = RolloutTarget(kind="shops", shops=("shop-a", "shop-b"))
    assert shops.includes("m", "shop-b", "n1") and not shops.includes("m", "shop-c", "n1")
    node = RolloutTarget(kind="node", node_id="n7")
    assert node.includes("m", "any", "n7") and not node.includes("m", "any", "n8")
    with pytest.raises(ValidationError):
        RolloutTarget(kind="shops")
    with pytest.raises(ValidationError):
        RolloutTarget(kind="percent")


def test_percent_rollouts_pick_a_stable_growing_share_of_nodes() -> None:
    nodes = [f"node-{i}" for i in range(2000)]
    chosen = {p: {n for n in nodes if RolloutTarget(kind="percent", percent=p).includes("m", "s", n)}
              for p in (0, 10, 50, 100)}
    assert chosen[0] == set() and chosen[100] == set(nodes)
    assert 150 < len(chosen[10]) < 250 and 900 < len(chosen[50]) < 1100
    assert chosen[10] <= chosen[50], "raising the percentage keeps the nodes already in"
    assert rollout_bucket("m", "node-1") == rollout_bucket("m", "node-1")
    assert {rollout_bucket("m", n) for n in nodes[:50]} != {rollout_bucket("other", n) for n in nodes[:50]}


def test_a_node_serves_the_newest_rollout_that_targets_it_and_shadows_apart() -> None:
    canary = make(3, "2.0.0", RolloutTarget(kind="node", node_id="n1"))
    shadow = make(2, "3.0.0", RolloutTarget(kind="all"), shadow=True)
    everyone = make(1, "1.0.0", RolloutTarget(kind="all"))
    announcement = ModelAnnouncement(revision=4, rollouts=(canary, shadow, everyone), at=datetime.now(UTC))
    assert announcement.serving_for("s", "n1") == canary
    assert announcement.serving_for("s", "n2") == everyone
    assert announcement.shadow_for("s", "n2") == shadow
    assert ModelAnnouncement(revision=5, at=datetime.now(UTC)).serving_for("s", "n1") is None


@pytest.mark.parametrize(("name", "version"), [("..", "1"), (".hidden", "1"), ("m", ".."), ("m", "."),
                                               ("a/b", "1"), ("m", "1/2")])
def test_names_and_versions_that_are_not_plain_folder_names_are_refused(name: str, version: str) -> None:
    with pytest.raises(ValidationError):
        make(1, version, RolloutTarget(kind="all"), name=name)


def test_a_bundle_path_outside_the_models_api_is_refused() -> None:
    for path in ("/api/v1/models/../../etc/bundle.tar", "/etc/passwd", "/api/v1/models/m/1/other.tar"):
        with pytest.raises(ValidationError):
            BundleLocation(path=path, sha256=SHA, size=1)


def test_a_later_registry_epoch_supersedes_any_revision_and_an_earlier_one_none() -> None:
    from shared_models.model_updates import supersedes

    old, new = "20261101T080000-00000000000000aa", "20261130T090000-00000000000000bb"
    assert supersedes(old, 5, old, 4) and not supersedes(old, 4, old, 4) and not supersedes(old, 3, old, 4)
    assert supersedes(new, 1, old, 9), "a rebuilt registry counts from 1 again"
    assert not supersedes(old, 99, new, 1), "the old registry's announcements never come back"
    assert supersedes(old, 1, None, 7), "a node that applied announcements of a central older than epochs"
    assert supersedes(None, 8, None, 7) and not supersedes(None, 7, None, 7)
