"""The staging slot: unpack a downloaded bundle, verify it, load it and run its self-test, all before it serves.

Synchronous and slow (seconds): the manager runs it in an executor while the serving model keeps serving.
Every failure becomes a `ModelUpdateError` naming the stage; all of them are permanent for that bundle (the
same bytes will fail the same way), except a disk error while unpacking.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from edge_node.engines.bundle import BundleError, BundleIntegrityError, BundleSignatureError
from edge_node.engines.trocr_onnx import BundleSelfTestError, TrocrConfig, TrocrRecognizer, load_trocr
from edge_node.errors import ModelError
from edge_node.models.archive import unpack_bundle
from edge_node.models.errors import ModelUpdateError

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadSettings:
    """How staged bundles are verified and their sessions built."""

    trusted_keys: tuple[Path, ...]
    threads: int = 0
    enable_gpu: bool = False
    max_bytes: int = 1 << 30


def stage_archive(archive: Path, folder: Path, name: str, version: str, settings: LoadSettings) -> TrocrRecognizer:
    """Unpack `archive` beside `folder`, move it into place (replacing a stale copy), and load it (see
    `load_folder`); the folder is removed if it fails. The serving model never reads from `folder`'s path:
    a name and version are only ever installed once (central refuses to change a stored version)."""
    staging = folder.with_name(f"{folder.name}.staging")
    unpack_bundle(archive, staging, max_bytes=settings.max_bytes)
    if folder.exists():
        shutil.rmtree(folder)
    staging.replace(folder)
    try:
        return load_folder(folder, name, version, settings)
    except ModelUpdateError:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def load_folder(folder: Path, name: str, version: str, settings: LoadSettings) -> TrocrRecognizer:
    """Verify signature and hashes, check it is the announced model, load its sessions, run its self-test."""
    try:
        recognizer = load_trocr(TrocrConfig(bundle_dir=folder, trusted_keys=settings.trusted_keys,
                                            threads=settings.threads, enable_gpu=settings.enable_gpu))
    except BundleSelfTestError as err:
        raise ModelUpdateError(err.message, stage="self-test", permanent=True) from err
    except (BundleSignatureError, BundleIntegrityError) as err:
        raise ModelUpdateError(err.message, stage="verify", permanent=True) from err
    except BundleError as err:
        raise ModelUpdateError(err.message, stage="verify", permanent=True) from err
    except ModelError as err:
        raise ModelUpdateError(err.message, stage="load", permanent=True) from err
    manifest = recognizer.bundle.manifest
    if (manifest.name, manifest.version) != (name, version):
        raise ModelUpdateError(
            f"the bundle announced as {name}@{version} contains {manifest.name}@{manifest.version}",
            stage="verify", permanent=True,
        )
    _LOGGER.info("staged %s@%s from %s (self-test passed)", name, version, folder)
    return recognizer
