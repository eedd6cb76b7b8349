"""Why a model update did not happen; `permanent` failures are remembered so the same bundle is not tried again."""

from __future__ import annotations

from edge_node.errors import ModelError


class ModelUpdateError(ModelError):
    """A model update failed at `stage` (download, unpack, verify, self-test, probation)."""

    def __init__(self, message: str, *, stage: str, permanent: bool) -> None:
        super().__init__(message, details={"stage": stage})
        self.stage = stage
        self.permanent = permanent
