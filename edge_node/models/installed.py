"""What the node remembers about an installed bundle (the `serving`, `previous` and `shadow` slots)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared_models.model_updates import ModelRollout


def now_iso() -> str:
    """ISO 8601 UTC, as the node's other timestamps."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class InstalledModel:
    """A bundle unpacked under the models folder, and its standing on this node."""

    name: str
    version: str
    sha256: str
    folder: str
    languages: tuple[str, ...]
    rollout_id: int
    state: str  # probation | confirmed | shadow
    since: str

    @property
    def label(self) -> str:
        """NAME@VERSION."""
        return f"{self.name}@{self.version}"

    @property
    def path(self) -> Path:
        """The unpacked bundle."""
        return Path(self.folder)

    @classmethod
    def from_rollout(cls, rollout: ModelRollout, folder: Path, state: str) -> InstalledModel:
        """The record of a freshly staged rollout."""
        return cls(name=rollout.name, version=rollout.version, sha256=rollout.bundle.sha256, folder=str(folder),
                   languages=tuple(rollout.languages), rollout_id=rollout.rollout_id, state=state, since=now_iso())

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> InstalledModel:
        """From its stored JSON document."""
        return cls(**{**doc, "languages": tuple(doc["languages"])})

    def to_doc(self) -> dict[str, Any]:
        """Its JSON document."""
        return {**asdict(self), "languages": list(self.languages)}

    def with_state(self, state: str) -> InstalledModel:
        """The same model with another standing."""
        return replace(self, state=state, since=now_iso())


def prune_bundles(models_dir: Path, keep: Iterable[Path]) -> None:
    """Delete the unpacked bundle folders (MODELS/NAME/VERSION) not in `keep`; `downloads/` is left alone."""
    kept = {path.resolve() for path in keep}
    if not models_dir.is_dir():
        return
    for name_dir in models_dir.iterdir():
        if not name_dir.is_dir() or name_dir.name == "downloads":
            continue
        for version_dir in name_dir.iterdir():
            if version_dir.is_dir() and version_dir.resolve() not in kept:
                shutil.rmtree(version_dir, ignore_errors=True)
