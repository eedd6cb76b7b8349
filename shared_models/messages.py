"""Sync envelopes exchanged over MQTT between nodes and the central service (DESIGN §5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared_models.topics import UpKind

SCHEMA_VERSION = 1
#: Central refuses messages larger than this (a result with hundreds of lines is ~100 kB).
MAX_MESSAGE_BYTES = 1_000_000


class Envelope(BaseModel):
    """One upstream message: an outbox row of a node."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(description="Protocol version; central rejects versions it does not know.")
    node_id: str = Field(min_length=1, max_length=128)
    shop_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=1, description="The node's outbox sequence number.")
    kind: UpKind
    sent_at: datetime
    body: dict[str, Any]


class Ack(BaseModel):
    """Central's acknowledgement: every seq up to and including `seq` is committed."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    node_id: str
    seq: int = Field(ge=0)
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
