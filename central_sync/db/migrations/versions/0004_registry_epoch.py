"""The model registry names itself in announcements (a registry rebuilt from scratch counts revisions from 1 again).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add model_state.epoch; an existing registry gets one now (later than any node has seen: none had one)."""
    op.add_column(
        "model_state",
        sa.Column("epoch", sa.Text, comment="Names this registry in announcements (made with the row; see "
                  "model_updates)."),
    )
    op.execute(
        "UPDATE model_state SET epoch = to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS') || '-' "
        "|| substr(md5(random()::text), 1, 16)"
    )


def downgrade() -> None:
    """Drop model_state.epoch."""
    op.drop_column("model_state", "epoch")
