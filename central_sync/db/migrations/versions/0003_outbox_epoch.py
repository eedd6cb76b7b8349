"""Nodes remember the outbox epoch their seqs belong to (a node whose database is replaced counts from 1 again).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add nodes.epoch."""
    op.add_column(
        "nodes",
        sa.Column("epoch", sa.Text, comment="Outbox epoch of acked_seq and the pending seqs (NULL: not reported)."),
    )


def downgrade() -> None:
    """Drop nodes.epoch."""
    op.drop_column("nodes", "epoch")
