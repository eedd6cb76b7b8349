"""The rollout rules (central_sync/rollout_plan.py): what a new rollout supersedes, what a rollback picks, and the
announcement nodes receive (newest first, bundle location, and the node-side choice it leads to)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from central_sync.rollout_plan import (
    ACTIVE,
    BundleRecord,
    RolloutRecord,
    announcement,
    covers,
    describe,
    includes_shop,
    target_columns,
    target_of,
    to_roll_back,
    to_supersede,
)
from shared_models.model_updates import RolloutTarget, rollout_bucket

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ALL = RolloutTarget(kind="all")


def shops(*ids: str) -> RolloutTarget:
    return RolloutTarget(kind="shops", shops=ids)


def percent(n: int) -> RolloutTarget:
    return RolloutTarget(kind="percent", percent=n)


def node(node_id: str) -> RolloutTarget:
    return RolloutTarget(kind="node", node_id=node_id)


def record(rollout_id: int, version: str, target: RolloutTarget, *, shadow: bool = False, name: str = "m",
           state: str = ACTIVE) -> RolloutRecord:
    bundle = BundleRecord(name=name, version=version, engine="trocr", languages=("en",), signer_key_id="k",
                          signature_verified=True, archive_sha256="ab" * 32, archive_size=1234,
                          storage_path=f"{name}/{version}/bundle.tar", uploaded_at=NOW)
    return RolloutRecord(rollout_id=rollout_id, name=name, version=version, target=target, shadow=shadow,
                         shadow_sample=0.25 if shadow else 0.1, state=state, superseded_by=None, created_at=NOW,
                         ended_at=None, bundle=bundle)


@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        (ALL, shops("a"), True),
        (ALL, percent(10), True),
        (shops("a", "b"), shops("a"), True),
        (shops("a"), shops("a", "b"), False),
        (shops("a"), ALL, False),
        (percent(50), percent(10), True),
        (percent(10), percent(50), False),
        (percent(100), ALL, False),
        (node("n1"), node("n1"), True),
        (node("n1"), node("n2"), False),
        (shops("a"), node("n1"), True),  # n1 belongs to shop a
        (shops("b"), node("n1"), False),
    ],
)
def test_covers(new: RolloutTarget, old: RolloutTarget, expected: bool) -> None:
    assert covers(new, old, {"n1": "a"}) is expected


def test_a_canary_stays_below_the_fleet_rollout_and_all_supersedes_it() -> None:
    fleet = record(1, "1.0", ALL)
    # 10% of the nodes move to 2.0: the fleet rollout is not covered, so it stays active beneath.
    assert to_supersede("m", "2.0", percent(10), False, [fleet]) == []
    canary = record(2, "2.0", percent(10))
    assert to_supersede("m", "2.0", percent(50), False, [canary, fleet]) == [2]
    assert to_supersede("m", "2.0", ALL, False, [canary, fleet]) == [2, 1]
    # Other models are never touched.
    assert to_supersede("other", "1.0", ALL, False, [canary, fleet]) == []


def test_shadows_supersede_shadows_and_promotion_ends_the_shadow_of_that_version() -> None:
    serving = record(1, "1.0", ALL)
    shadow_a = record(2, "2.0", shops("a"), shadow=True)
    assert to_supersede("m", "3.0", percent(5), True, [serving, shadow_a]) == [2]
    assert to_supersede("m", "2.0", shops("b"), False, [serving, shadow_a]) == [2]  # promoted: shadow ends
    assert to_supersede("m", "4.0", shops("b"), False, [serving, shadow_a]) == []


def test_rollback_picks_the_newest_active_rollout_of_the_kind() -> None:
    rollouts = [record(1, "1.0", ALL), record(3, "2.0", percent(10)), record(4, "3.0", ALL, shadow=True),
                record(5, "9.0", ALL, state="rolled_back"), record(6, "1.0", ALL, name="other")]
    serving = to_roll_back("m", rollouts)
    assert serving is not None and serving.rollout_id == 3
    shadow = to_roll_back("m", rollouts, shadow=True)
    assert shadow is not None and shadow.rollout_id == 4
    assert to_roll_back("absent", rollouts) is None


def test_the_announcement_lists_active_rollouts_newest_first() -> None:
    fleet, canary, shadow = record(1, "1.0", ALL), record(2, "2.0", percent(30)), record(3, "3.0", ALL, shadow=True)
    ended = record(4, "4.0", ALL, state="superseded")
    announced = announcement(7, NOW, [fleet, ended, shadow, canary])
    assert announced.revision == 7 and announced.at == NOW
    assert [r.rollout_id for r in announced.rollouts] == [3, 2, 1]
    first = announced.rollouts[1]
    assert first.bundle.path == "/api/v1/models/m/2.0/bundle.tar"
    assert (first.bundle.sha256, first.bundle.size, first.engine, first.languages) == ("ab" * 32, 1234, "trocr",
                                                                                      ("en",))
    assert announced.rollouts[0].shadow and announced.rollouts[0].shadow_sample == 0.25
    # What a node does with it: canary nodes serve 2.0, the others 1.0; everyone shadows 3.0.
    in_canary = next(f"n{i}" for i in range(1000) if rollout_bucket("m", f"n{i}") < 30)
    outside = next(f"n{i}" for i in range(1000) if rollout_bucket("m", f"n{i}") >= 30)
    assert announced.serving_for("s", in_canary).version == "2.0"
    assert announced.serving_for("s", outside).version == "1.0"
    assert announced.shadow_for("s", outside).version == "3.0"
    assert announcement(0, NOW, []).rollouts == ()


def test_shop_scope_and_texts() -> None:
    node_shops = {"n1": "a"}
    assert includes_shop(ALL, "z", node_shops) and includes_shop(percent(5), "z", node_shops)
    assert includes_shop(shops("a", "b"), "b", node_shops) and not includes_shop(shops("a"), "b", node_shops)
    assert includes_shop(node("n1"), "a", node_shops) and not includes_shop(node("n1"), "b", node_shops)
    assert [describe(t) for t in (ALL, shops("a", "b"), percent(10), node("n1"))] == [
        "all", "shops a,b", "10% of nodes", "node n1"
    ]
    for target in (ALL, shops("a", "b"), percent(10), node("n1")):
        columns = target_columns(target)
        assert target_of(columns["target_kind"], columns["target_shops"], columns["target_percent"],
                         columns["target_node_id"]) == target
