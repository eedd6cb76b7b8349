"""Initial schema: jobs, error logs, metrics, nodes + ack bookkeeping, Kafka outbox, rejects, products + trigger.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = TIMESTAMP(timezone=True)

#: The seed's product auto-create: a job whose structured_data carries a barcode upserts products(shop, barcode).
#: Only a changed structured_data counts again on UPDATE, so a re-delivered job never counts twice.
PRODUCT_FUNCTION = r"""
CREATE FUNCTION ocr_jobs_upsert_product() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_data jsonb := NEW.structured_data;
    v_barcode text;
    v_price_text text;
    v_price numeric;
BEGIN
    IF v_data IS NULL OR jsonb_typeof(v_data) <> 'object' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND v_data IS NOT DISTINCT FROM OLD.structured_data THEN
        RETURN NULL;
    END IF;
    v_barcode := NULLIF(btrim(v_data ->> 'barcode'), '');
    IF v_barcode IS NULL THEN
        RETURN NULL;
    END IF;
    v_price_text := btrim(v_data ->> 'price');
    IF v_price_text ~ '^-?[0-9]{1,15}(\.[0-9]{1,6})?$' THEN
        v_price := v_price_text::numeric;
    END IF;
    INSERT INTO products AS p (shop_id, barcode, name, price, currency)
    VALUES (NEW.shop_id, v_barcode, NULLIF(btrim(v_data ->> 'product_name'), ''), v_price,
            NULLIF(btrim(v_data ->> 'currency'), ''))
    ON CONFLICT (shop_id, barcode) DO UPDATE SET
        name = COALESCE(EXCLUDED.name, p.name),
        price = COALESCE(EXCLUDED.price, p.price),
        currency = COALESCE(EXCLUDED.currency, p.currency),
        last_seen = now(),
        times_seen = p.times_seen + 1;
    RETURN NULL;
END
$$
"""

#: One statement per execute: asyncpg prepares each statement and refuses several in one.
PRODUCT_TRIGGER_BINDING = """
CREATE TRIGGER trg_ocr_jobs_product
AFTER INSERT OR UPDATE OF structured_data ON ocr_processing_jobs
FOR EACH ROW EXECUTE FUNCTION ocr_jobs_upsert_product()
"""


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True)


def _now(name: str) -> sa.Column:
    return sa.Column(name, TZ, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    """Create every table, index and the product trigger."""
    op.create_table(
        "ocr_processing_jobs",
        _id(),
        sa.Column("node_id", sa.Text, nullable=False),
        sa.Column("shop_id", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column(
            "seq", sa.BigInteger, nullable=False, comment="Envelope seq that last wrote this row (older ones lose)."
        ),
        sa.Column("user_id", sa.Text),
        sa.Column("document_type", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("extracted_text", sa.Text),
        sa.Column("structured_data", JSONB),
        sa.Column("barcodes", JSONB),
        sa.Column("result", JSONB),
        sa.Column("confidence_score", sa.Double),
        sa.Column("processing_time_ms", sa.Double),
        sa.Column("model_used", sa.Text),
        sa.Column("error_code", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", TZ),
        sa.Column("completed_at", TZ),
        sa.Column("event_at", TZ, comment="The event's timestamp on the node."),
        _now("received_at"),
        sa.PrimaryKeyConstraint("id", name="pk_ocr_processing_jobs"),
        sa.UniqueConstraint("node_id", "job_id", name="uq_ocr_processing_jobs_node_id_job_id"),
    )
    op.create_index("ix_ocr_processing_jobs_shop_id", "ocr_processing_jobs", ["shop_id"])
    op.create_index("ix_ocr_processing_jobs_status", "ocr_processing_jobs", ["status"])
    op.create_index("ix_ocr_processing_jobs_created_at", "ocr_processing_jobs", ["created_at"])
    op.create_index("ix_ocr_processing_jobs_confidence_score", "ocr_processing_jobs", ["confidence_score"])
    op.create_index(
        "ix_ocr_processing_jobs_structured_data", "ocr_processing_jobs", ["structured_data"], postgresql_using="gin"
    )

    op.create_table(
        "ocr_error_logs",
        _id(),
        sa.Column("node_id", sa.Text, nullable=False),
        sa.Column("shop_id", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("attempt", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", TZ),
        _now("received_at"),
        sa.PrimaryKeyConstraint("id", name="pk_ocr_error_logs"),
    )
    op.create_index("ix_ocr_error_logs_shop_id", "ocr_error_logs", ["shop_id"])
    op.create_index("ix_ocr_error_logs_node_id_job_id", "ocr_error_logs", ["node_id", "job_id"])

    op.create_table(
        "ocr_model_metrics",
        _id(),
        sa.Column("node_id", sa.Text, nullable=False),
        sa.Column("shop_id", sa.Text, nullable=False),
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("metric_name", sa.Text, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("job_id", sa.Text),
        sa.Column("recorded_at", TZ, nullable=False),
        _now("received_at"),
        sa.PrimaryKeyConstraint("id", name="pk_ocr_model_metrics"),
    )
    op.create_index("ix_ocr_model_metrics_shop_id_recorded_at", "ocr_model_metrics", ["shop_id", "recorded_at"])
    op.create_index("ix_ocr_model_metrics_model_name_metric_name", "ocr_model_metrics", ["model_name", "metric_name"])

    op.create_table(
        "nodes",
        sa.Column("node_id", sa.Text, nullable=False),
        sa.Column("shop_id", sa.Text, nullable=False, comment="A node belongs to the shop it first wrote under."),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'online'")),
        sa.Column("status_at", TZ, comment="Time of the status report applied last (older reports lose)."),
        sa.Column("last_seen", TZ),
        _now("first_seen"),
        sa.Column("model_version", sa.Text),
        sa.Column("model_versions", JSONB),
        sa.Column("backlog", sa.Integer),
        sa.Column("version", sa.Text),
        sa.Column(
            "acked_seq", sa.BigInteger, nullable=False, server_default=sa.text("0"), comment="Highest contiguous seq."
        ),
        sa.PrimaryKeyConstraint("node_id", name="pk_nodes"),
    )
    op.create_index("ix_nodes_shop_id", "nodes", ["shop_id"])

    op.create_table(
        "node_pending_seqs",
        sa.Column("node_id", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("node_id", "seq", name="pk_node_pending_seqs"),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.node_id"], name="fk_node_pending_seqs_node_id", ondelete="CASCADE"
        ),
        comment="Seqs committed above a gap: received but not yet contiguous with nodes.acked_seq.",
    )

    op.create_table(
        "kafka_outbox",
        _id(),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", JSONB, nullable=False),
        _now("created_at"),
        sa.Column("sent_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_kafka_outbox"),
    )
    op.create_index("ix_kafka_outbox_unsent", "kafka_outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"))
    op.create_index("ix_kafka_outbox_sent_at", "kafka_outbox", ["sent_at"])

    op.create_table(
        "rejects",
        _id(),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("node_id", sa.Text),
        sa.Column("shop_id", sa.Text),
        sa.Column("seq", sa.BigInteger),
        sa.Column(
            "skipped", sa.Boolean, nullable=False, server_default=sa.text("false"), comment="Its seq was acked anyway."
        ),
        sa.Column("payload_excerpt", sa.Text),
        sa.Column("payload_bytes", sa.Integer, nullable=False),
        _now("received_at"),
        sa.PrimaryKeyConstraint("id", name="pk_rejects"),
    )
    op.create_index("ix_rejects_received_at", "rejects", ["received_at"])

    op.create_table(
        "products",
        _id(),
        sa.Column("shop_id", sa.Text, nullable=False),
        sa.Column("barcode", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("price", sa.Numeric),
        sa.Column("currency", sa.Text),
        _now("first_seen"),
        _now("last_seen"),
        sa.Column("times_seen", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("shop_id", "barcode", name="uq_products_shop_id_barcode"),
        comment="Filled by the trigger on ocr_processing_jobs (the seed's product auto-create).",
    )
    op.execute(PRODUCT_FUNCTION)
    op.execute(PRODUCT_TRIGGER_BINDING)


def downgrade() -> None:
    """Drop everything this revision created."""
    op.execute("DROP TRIGGER IF EXISTS trg_ocr_jobs_product ON ocr_processing_jobs")
    op.execute("DROP FUNCTION IF EXISTS ocr_jobs_upsert_product()")
    for table in (
        "products",
        "rejects",
        "kafka_outbox",
        "node_pending_seqs",
        "nodes",
        "ocr_model_metrics",
        "ocr_error_logs",
        "ocr_processing_jobs",
    ):
        op.drop_table(table)
