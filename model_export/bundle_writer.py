"""Writing a bundle folder: file entries with sha256, `manifest.json`, and the staged output that appears at its
final path only when complete (a half-written bundle is never left where a node or `sign` could pick it up)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_node.engines.bundle import sha256_file
from model_export.errors import OutputExistsError
from shared_models.bundle import MANIFEST_NAME, BundleFile, BundleManifest, FileRole


def file_entry(root: Path, relative: str, role: FileRole) -> BundleFile:
    """The manifest entry of `root/relative`."""
    path = root / relative
    return BundleFile(path=relative, sha256=sha256_file(path), size=path.stat().st_size, role=role)


def manifest_bytes(manifest: BundleManifest) -> bytes:
    """The canonical text of `manifest.json` (what the signature covers)."""
    document = manifest.model_dump(mode="json")
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_manifest(root: Path, manifest: BundleManifest) -> Path:
    """Write `root/manifest.json`."""
    path = root / MANIFEST_NAME
    path.write_bytes(manifest_bytes(manifest))
    return path


@contextmanager
def staged_output(out: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a sibling staging folder; on success it replaces `out` (which must be absent or empty unless `force`)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise OutputExistsError(f"{out} exists and is not empty; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    staging.rename(out)
