"""Job lifecycle shared by the node's queue and the central store."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """queued -> processing -> completed | failed | dead (failed after every retry)."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD = "dead"

    @property
    def is_final(self) -> bool:
        """True when the job will not change any more without an explicit retry."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.DEAD)
