"""Table definitions of the central database (SQLAlchemy Core). Alembic revisions create them; keep both in step.

The seed's three tables gain `node_id`/`shop_id` and `UNIQUE(node_id, job_id)`; `nodes` + `node_pending_seqs`
hold each node's ack bookkeeping (DESIGN §5); `kafka_outbox` feeds the relay; `rejects` records bad input.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
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
