"""Sync envelopes exchanged over MQTT between nodes and the central service (DESIGN §5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared_models.topics import UpKind

SCHEMA_VERSION = 1
#: An outbox epoch: when the node's database was created (UTC, to the second), then 16 random hex digits. A node
#: whose database is replaced starts its seqs at 1 again under a new, later epoch; central orders epochs by this
#: text and restarts the node's seq bookkeeping at a newer one.
EPOCH_PATTERN = r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{16}$"
#: Central refuses messages larger than this (a result with hundreds of lines is ~100 kB).
MAX_MESSAGE_BYTES = 1_000_000


class Envelope(BaseModel):
    """One upstream message: an outbox row of a node."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(description="Protocol version; central rejects versions it does not know.")
    node_id: str = Field(min_length=1, max_length=128)
    shop_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=1, description="The node's outbox sequence number.")
    epoch: str | None = Field(
        None, pattern=EPOCH_PATTERN, description="The outbox's epoch (seqs count from 1 within one); None from nodes "
        "older than epochs, taken as the node's current one.",
    )
    kind: UpKind
    sent_at: datetime
    body: dict[str, Any]


class Ack(BaseModel):
    """Central's acknowledgement: every seq up to and including `seq` is committed."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    node_id: str
    seq: int = Field(ge=0)
    epoch: str | None = Field(None, pattern=EPOCH_PATTERN, description="The epoch the seq belongs to.")
    acked_at: datetime


class NodeStatus(BaseModel):
    """Retained status of a node; the last will publishes `offline`."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    node_id: str
    shop_id: str
    state: str = Field(pattern="^(online|offline)$")
    version: str | None = None
    model_versions: dict[str, str] = Field(default_factory=dict)
    backlog: int | None = None
    at: datetime | None = None
