"""Table definitions of the central database (SQLAlchemy Core). Alembic revisions create them; keep both in step.

The seed's three tables gain `node_id`/`shop_id` and `UNIQUE(node_id, job_id)`; `nodes` + `node_pending_seqs`
hold each node's ack bookkeeping (DESIGN §5); `kafka_outbox` feeds the relay; `rejects` records bad input;
`model_bundles`, `rollouts` and the one-row `model_state` are the model registry (DESIGN §6, central_sync/registry.py).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

#: Constraint names are explicit so Alembic revisions and these models agree on them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TZ = TIMESTAMP(timezone=True)

jobs = Table(
    "ocr_processing_jobs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("node_id", Text, nullable=False),
    Column("shop_id", Text, nullable=False),
    Column("job_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False, comment="Envelope seq that last wrote this row (older ones lose)."),
    Column("user_id", Text),
    Column("document_type", Text),
    Column("status", Text, nullable=False),
    Column("extracted_text", Text),
    Column("structured_data", JSONB(none_as_null=True)),
    Column("barcodes", JSONB(none_as_null=True)),
    Column("result", JSONB(none_as_null=True)),
    Column("confidence_score", Double),
    Column("processing_time_ms", Double),
    Column("model_used", Text),
    Column("error_code", Text),
    Column("error_message", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", TZ),
    Column("completed_at", TZ),
    Column("event_at", TZ, comment="The event's timestamp on the node."),
    Column("received_at", TZ, nullable=False, server_default=func.now()),
    UniqueConstraint("node_id", "job_id"),
    Index(None, "shop_id"),
    Index(None, "status"),
    Index(None, "created_at"),
    Index(None, "confidence_score"),
    Index(None, "structured_data", postgresql_using="gin"),
)

error_logs = Table(
    "ocr_error_logs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("node_id", Text, nullable=False),
    Column("shop_id", Text, nullable=False),
    Column("job_id", Text),
    Column("code", Text, nullable=False),
    Column("message", Text),
    Column("model_name", Text, comment="NAME@VERSION a node-level error (no job) is about, e.g. a model update."),
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    Column("created_at", TZ),
    Column("received_at", TZ, nullable=False, server_default=func.now()),
    Index(None, "shop_id"),
    Index(None, "node_id", "job_id"),
)

model_metrics = Table(
    "ocr_model_metrics",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("node_id", Text, nullable=False),
    Column("shop_id", Text, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("metric_name", Text, nullable=False),
    Column("value", Double, nullable=False),
    Column("job_id", Text),
    Column("recorded_at", TZ, nullable=False),
    Column("received_at", TZ, nullable=False, server_default=func.now()),
    Index(None, "shop_id", "recorded_at"),
    Index(None, "model_name", "metric_name"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("node_id", Text, primary_key=True),
    Column("shop_id", Text, nullable=False, comment="A node belongs to the shop it first wrote under."),
    Column("status", Text, nullable=False, server_default=text("'online'")),
    Column("status_at", TZ, comment="Time of the status report applied last (older reports lose)."),
    Column("last_seen", TZ),
    Column("first_seen", TZ, nullable=False, server_default=func.now()),
    Column("model_version", Text),
    Column("model_versions", JSONB(none_as_null=True)),
    Column("backlog", Integer),
    Column("version", Text),
    Column("acked_seq", BigInteger, nullable=False, server_default=text("0"), comment="Highest contiguous seq."),
    Column("epoch", Text, comment="Outbox epoch of acked_seq and the pending seqs (NULL: not reported)."),
    Index(None, "shop_id"),
)

pending_seqs = Table(
    "node_pending_seqs",
    metadata,
    Column("node_id", Text, ForeignKey("nodes.node_id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("node_id", "seq"),
    comment="Seqs committed above a gap: received but not yet contiguous with nodes.acked_seq.",
)

kafka_outbox = Table(
    "kafka_outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("topic", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("value", JSONB, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("sent_at", TZ),
    Index("ix_kafka_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    Index(None, "sent_at"),
)

rejects = Table(
    "rejects",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("topic", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("node_id", Text),
    Column("shop_id", Text),
    Column("seq", BigInteger),
    Column("skipped", Boolean, nullable=False, server_default=text("false"), comment="Its seq was acked anyway."),
    Column("payload_excerpt", Text),
    Column("payload_bytes", Integer, nullable=False),
    Column("received_at", TZ, nullable=False, server_default=func.now()),
    Index(None, "received_at"),
)

products = Table(
    "products",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("shop_id", Text, nullable=False),
    Column("barcode", Text, nullable=False),
    Column("name", Text),
    Column("price", Numeric),
    Column("currency", Text),
    Column("first_seen", TZ, nullable=False, server_default=func.now()),
    Column("last_seen", TZ, nullable=False, server_default=func.now()),
    Column("times_seen", Integer, nullable=False, server_default=text("1")),
    UniqueConstraint("shop_id", "barcode"),
    comment="Filled by the trigger on ocr_processing_jobs (the seed's product auto-create).",
)

model_bundles = Table(
    "model_bundles",
    metadata,
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("engine", Text, nullable=False),
    Column("languages", JSONB, nullable=False),
    Column("manifest", JSONB, nullable=False, comment="manifest.json as uploaded (the signed document)."),
    Column("signer_key_id", Text, nullable=False, comment="key_id named by manifest.sig."),
    Column("signature_verified", Boolean, nullable=False, comment="Checked against registry.trusted_keys."),
    Column("archive_sha256", Text, nullable=False, comment="Hex SHA-256 of the stored tar (announced to nodes)."),
    Column("archive_size", BigInteger, nullable=False, comment="Bytes of the stored tar."),
    Column("storage_path", Text, nullable=False, comment="The tar, relative to registry.storage_dir."),
    Column("uploaded_at", TZ, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("name", "version"),
    comment="Stored model bundles; a name + version is immutable once uploaded.",
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("target_kind", Text, nullable=False),
    Column("target_shops", JSONB(none_as_null=True), comment="Shop ids, for target_kind = shops."),
    Column("target_percent", Integer, comment="Share of nodes (0-100), for target_kind = percent."),
    Column("target_node_id", Text, comment="The one node, for target_kind = node."),
    Column("shadow", Boolean, nullable=False, server_default=text("false")),
    Column("shadow_sample", Double, nullable=False),
    Column("state", Text, nullable=False, server_default=text("'active'")),
    Column("superseded_by", BigInteger, comment="The rollout that replaced this one (a rollback restores it)."),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("ended_at", TZ),
    ForeignKeyConstraint(["name", "version"], ["model_bundles.name", "model_bundles.version"]),
    ForeignKeyConstraint(["superseded_by"], ["rollouts.id"], name="fk_rollouts_superseded_by"),
    CheckConstraint("state IN ('active', 'rolled_back', 'superseded')", name="ck_rollouts_state"),
    CheckConstraint("target_kind IN ('all', 'shops', 'percent', 'node')", name="ck_rollouts_target_kind"),
    Index(None, "name", "state"),
    comment="Rollouts of stored bundles; the active ones make up the announced model state.",
)

model_state = Table(
    "model_state",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("revision", BigInteger, nullable=False, comment="Revision of the last announced change."),
    Column("changed_at", TZ, nullable=False, comment="When that change was made (the announcement's `at`)."),
    Column("epoch", Text, comment="Names this registry in announcements (made with the row; see model_updates)."),
    CheckConstraint("id = 1", name="ck_model_state_one_row"),
    comment="One row: the announcement revision, bumped by every rollout change.",
)
