"""Variants of the tiny TrOCR bundle for model-update tests: other versions, signed by another key, with a
self-test that cannot pass; packed as the uncompressed tar central serves."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tiny_trocr import TinyBundle

from model_export.signing import keygen, sign_bundle
from shared_models.bundle import MANIFEST_NAME, SIGNATURE_NAME
from shared_models.model_updates import BundleLocation, ModelAnnouncement, ModelRollout, RolloutTarget, bundle_path


def variant(tiny: TinyBundle, root: Path, version: str, *, key: Path | None = None,
            break_self_test: bool = False) -> Path:
    """A copy of the tiny bundle as `version`, signed with `key` (default: the trusted one)."""
    folder = root / f"bundle-{version}"
    shutil.copytree(tiny.bundle, folder)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["version"] = version
    if break_self_test:
        manifest["golden"][0]["expected"] = manifest["golden"][0]["expected"] + " X"
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    (folder / SIGNATURE_NAME).unlink()
    sign_bundle(folder, key or tiny.private_key)
    return folder


def other_key(root: Path) -> Path:
    """A signing key no node trusts."""
    private, _public = keygen(root / "untrusted-key")
    return private


def pack(bundle: Path, out: Path) -> Path:
    """The bundle's files at the top of an uncompressed tar (as central stores it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:") as tar:
        for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(bundle).as_posix())
    return out


def rollout(archive: Path, name: str, version: str, rollout_id: int, *, shadow: bool = False,
            target: RolloutTarget | None = None, sample: float = 1.0) -> ModelRollout:
    """An announced rollout of the tar `archive`."""
    data = archive.read_bytes()
    return ModelRollout(
        rollout_id=rollout_id, name=name, version=version, engine="trocr", languages=("en",),
        bundle=BundleLocation(path=bundle_path(name, version), sha256=hashlib.sha256(data).hexdigest(),
                              size=len(data)),
        target=target or RolloutTarget(kind="all"), shadow=shadow, shadow_sample=sample, created_at=datetime.now(UTC),
    )


def announcement(revision: int, *rollouts: ModelRollout) -> ModelAnnouncement:
    """The desired state with these rollouts."""
    return ModelAnnouncement(revision=revision, rollouts=rollouts, at=datetime.now(UTC))


@dataclass(frozen=True)
class Tars:
    """Packed bundles: good versions, one signed by an unknown key, one whose self-test fails."""

    v1: Path
    v2: Path
    wrong_key: Path
    bad_self_test: Path
