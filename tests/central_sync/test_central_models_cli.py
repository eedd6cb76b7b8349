"""`central-sync models` end to end, as an operator runs it: the real tiny TrOCR bundle (tests/tiny_trocr.py),
a real PostgreSQL and our own Mosquitto. Upload (verified against the trusted key, immutable), roll out to every
node, a shadow rollout to one shop, list, roll back; what a node hears (retained and on its own topic) at each
step; and the one-line errors of refused requests and an unreachable broker."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from model_export.bundle_writer import write_manifest
from model_export.signing import sign_bundle
from shared_models.bundle import MANIFEST_NAME, BundleManifest
from shared_models.model_updates import bundle_path
from shared_models.topics import MODELS_ANNOUNCE, models_topic
from tests.central_sync.announcements import Listener
from tests.central_sync.harness import query
from tests.services import Mosquitto, free_port

pytestmark = pytest.mark.integration


class Cli:
    """Runs `central-sync models ...` in a subprocess with the test's database, broker and storage."""

    def __init__(self, db_url: str, mqtt_url: str, storage: Path, trusted_key: Path) -> None:
        self.env = {
            **os.environ,
            "CENTRAL_DATABASE_URL": db_url.replace("postgresql+asyncpg://", "postgresql://"),
            "CENTRAL_MQTT_URL": mqtt_url,
            "CENTRAL_MQTT__CLIENT_ID": "central-cli-test",
            "CENTRAL_REGISTRY__STORAGE_DIR": str(storage),
            "CENTRAL_REGISTRY__TRUSTED_KEYS": str(trusted_key),
            "CENTRAL_REGISTRY__PUBLISH_TIMEOUT_SECONDS": "5",
        }

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "central_sync", "--log-level", "WARNING", "models", *args],
            env={**self.env, **env}, capture_output=True, text=True, timeout=120, check=False,
        )

    def ok(self, *args: str, **env: str) -> str:
        done = self.run(*args, **env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


def _new_version(tiny: Any, tmp_path: Path, version: str) -> Path:
    """A copy of the tiny bundle under another version, signed again with the tiny key."""
    copy = tmp_path / f"tiny-{version}"
    shutil.copytree(tiny.bundle, copy)
    manifest = BundleManifest.model_validate_json((copy / MANIFEST_NAME).read_bytes())
    write_manifest(copy, manifest.model_copy(update={"version": version}))
    sign_bundle(copy, tiny.private_key)
    return copy


async def test_upload_rollout_shadow_and_rollback(tiny_bundle: Any, broker: Mosquitto, db_url: str,
                                                  tmp_path: Path) -> None:
    storage = tmp_path / "registry"
    cli = Cli(db_url, broker.url, storage, tiny_bundle.public_key)
    await query(db_url, "INSERT INTO nodes (node_id, shop_id) VALUES ('node-a', 'shop-1'), ('node-b', 'shop-2')")
    node_a = Listener(broker.url, [models_topic("shop-1", "node-a")], "node-a-models")
    try:
        stored = cli.ok("upload", str(tiny_bundle.bundle))
        assert stored.startswith("stored tiny-trocr 0.1.0 (trocr, ") and "(verified)" in stored
        assert "already stored with the same content" in cli.ok("upload", str(tiny_bundle.bundle))
        foreign = cli.run("upload", str(tiny_bundle.bundle),
                          CENTRAL_REGISTRY__TRUSTED_KEYS=str(tiny_bundle.other_public_key))
        assert foreign.returncode == 1 and foreign.stdout == ""
        assert foreign.stderr.count("\n") == 1 and "not one of registry.trusted_keys" in foreign.stderr

        first = cli.json("rollout", "tiny-trocr", "0.1.0", "--all")
        assert first["announcement"]["revision"] == 1 and first["nodes_notified"] == 2
        tar = storage / "tiny-trocr" / "0.1.0" / "bundle.tar"
        fleet = Listener(broker.url, [MODELS_ANNOUNCE], "late-node")  # connects after the change
        try:
            retained = await fleet.revision(1)
        finally:
            fleet.close()
        assert retained.retain and retained.topic == MODELS_ANNOUNCE
        (rollout,) = retained.announcement.rollouts
        assert (rollout.name, rollout.version, rollout.engine, rollout.languages) == ("tiny-trocr", "0.1.0", "trocr",
                                                                                      ("en",))
        assert rollout.bundle.path == bundle_path("tiny-trocr", "0.1.0")
        assert rollout.bundle.sha256 == hashlib.sha256(tar.read_bytes()).hexdigest()
        assert rollout.bundle.size == tar.stat().st_size and rollout.target.kind == "all" and not rollout.shadow
        direct = await node_a.revision(1)
        assert not direct.retain and direct.announcement == retained.announcement
        assert direct.announcement.serving_for("shop-1", "node-a") == rollout

        assert "stored tiny-trocr 0.2.0" in cli.ok("upload", str(_new_version(tiny_bundle, tmp_path, "0.2.0")))
        shadow = cli.json("rollout", "tiny-trocr", "0.2.0", "--shops", "shop-1", "--shadow", "--sample", "0.5")
        assert shadow["ended"] == []
        heard = (await node_a.revision(2)).announcement
        assert [(r.version, r.shadow) for r in heard.rollouts] == [("0.2.0", True), ("0.1.0", False)]
        assert heard.rollouts[0].shadow_sample == 0.5 and heard.shadow_for("shop-1", "node-a") == heard.rollouts[0]
        assert heard.shadow_for("shop-2", "node-b") is None

        listing = cli.json("list")
        assert listing["revision"] == 2 and [b["version"] for b in listing["bundles"]] == ["0.1.0", "0.2.0"]
        assert [(r["label"], r["shadow"]) for r in listing["rollouts"]] == [("tiny-trocr@0.2.0", True),
                                                                             ("tiny-trocr@0.1.0", False)]
        text = cli.ok("list")
        assert "shadow 50%" in text and "shops shop-1" in text and "tiny-trocr@0.1.0" in text

        back = cli.json("rollback", "tiny-trocr")
        assert back["rollout_id"] == first["rollout_id"] and back["announcement"]["revision"] == 3
        after = (await node_a.revision(3)).announcement
        assert [r.version for r in after.rollouts] == ["0.2.0"] and after.serving_for("shop-1", "node-a") is None
        assert "no active rollouts" in cli.ok("rollback", "tiny-trocr", "--shadow")

        nothing = cli.run("rollback", "tiny-trocr")
        assert nothing.returncode == 1 and "no active serving rollout" in nothing.stderr
        unknown = cli.run("rollout", "tiny-trocr", "9.9.9", "--all")
        assert unknown.returncode == 1 and "no bundle tiny-trocr 9.9.9 is stored" in unknown.stderr
        bad = cli.run("rollout", "tiny-trocr", "0.1.0", "--percent", "0")
        assert bad.returncode == 2 and "--percent must be between 1 and 100" in bad.stderr
        assert cli.run("rollout", "tiny-trocr", "0.1.0").returncode == 2  # a target is required
    finally:
        node_a.close()


async def test_an_unreachable_broker_leaves_the_change_saved_and_announce_repairs_it(
    broker: Mosquitto, db_url: str, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.central_sync.bundles import make_bundle, new_key

    key = Ed25519PrivateKey.generate()
    _unused, public = new_key(tmp_path / "keys")
    cli = Cli(db_url, broker.url, tmp_path / "registry", public)
    bundle = make_bundle(tmp_path / "b", key)
    assert "not verified" in cli.ok("upload", str(bundle), CENTRAL_REGISTRY__TRUSTED_KEYS="[]")
    dead = cli.run("rollout", "demo-trocr", "1.0.0", "--all", CENTRAL_MQTT_URL=f"mqtt://127.0.0.1:{free_port()}")
    assert dead.returncode == 1 and dead.stderr.count("\n") == 1
    assert "is saved as revision 1 but was not announced" in dead.stderr and "models announce" in dead.stderr
    fleet = Listener(broker.url, [MODELS_ANNOUNCE], "late-node")
    try:
        assert cli.json("announce")["announcement"]["revision"] == 1
        assert [r.version for r in (await fleet.revision(1)).announcement.rollouts] == ["1.0.0"]
    finally:
        fleet.close()
