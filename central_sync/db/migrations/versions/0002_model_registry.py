"""Model registry: stored bundles, rollouts, the announcement revision; node-level error logs name their model.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = TIMESTAMP(timezone=True)


def upgrade() -> None:
    """Create model_bundles, rollouts and model_state; add ocr_error_logs.model_name."""
    op.add_column(
        "ocr_error_logs",
        sa.Column(
            "model_name", sa.Text, comment="NAME@VERSION a node-level error (no job) is about, e.g. a model update."
        ),
    )
    op.create_table(
        "model_bundles",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("engine", sa.Text, nullable=False),
        sa.Column("languages", JSONB, nullable=False),
        sa.Column("manifest", JSONB, nullable=False, comment="manifest.json as uploaded (the signed document)."),
        sa.Column("signer_key_id", sa.Text, nullable=False, comment="key_id named by manifest.sig."),
        sa.Column("signature_verified", sa.Boolean, nullable=False, comment="Checked against registry.trusted_keys."),
        sa.Column(
            "archive_sha256", sa.Text, nullable=False, comment="Hex SHA-256 of the stored tar (announced to nodes)."
        ),
        sa.Column("archive_size", sa.BigInteger, nullable=False, comment="Bytes of the stored tar."),
        sa.Column("storage_path", sa.Text, nullable=False, comment="The tar, relative to registry.storage_dir."),
        sa.Column("uploaded_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("name", "version", name="pk_model_bundles"),
        comment="Stored model bundles; a name + version is immutable once uploaded.",
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("target_kind", sa.Text, nullable=False),
        sa.Column("target_shops", JSONB, comment="Shop ids, for target_kind = shops."),
        sa.Column("target_percent", sa.Integer, comment="Share of nodes (0-100), for target_kind = percent."),
        sa.Column("target_node_id", sa.Text, comment="The one node, for target_kind = node."),
        sa.Column("shadow", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("shadow_sample", sa.Double, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default=sa.text("'active'")),
        sa.Column(
            "superseded_by", sa.BigInteger, comment="The rollout that replaced this one (a rollback restores it)."
        ),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("ended_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
        sa.ForeignKeyConstraint(
            ["name", "version"], ["model_bundles.name", "model_bundles.version"], name="fk_rollouts_name"
        ),
        sa.ForeignKeyConstraint(["superseded_by"], ["rollouts.id"], name="fk_rollouts_superseded_by"),
        sa.CheckConstraint("state IN ('active', 'rolled_back', 'superseded')", name="ck_rollouts_state"),
        sa.CheckConstraint("target_kind IN ('all', 'shops', 'percent', 'node')", name="ck_rollouts_target_kind"),
        comment="Rollouts of stored bundles; the active ones make up the announced model state.",
    )
    op.create_index("ix_rollouts_name_state", "rollouts", ["name", "state"])
    op.create_table(
        "model_state",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False, comment="Revision of the last announced change."),
        sa.Column("changed_at", TZ, nullable=False, comment="When that change was made (the announcement's `at`)."),
        sa.PrimaryKeyConstraint("id", name="pk_model_state"),
        sa.CheckConstraint("id = 1", name="ck_model_state_one_row"),
        comment="One row: the announcement revision, bumped by every rollout change.",
    )


def downgrade() -> None:
    """Drop what this revision created."""
    op.drop_table("model_state")
    op.drop_table("rollouts")
    op.drop_table("model_bundles")
    op.drop_column("ocr_error_logs", "model_name")
