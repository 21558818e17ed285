"""rate_counts: per-replica request counts for rate limiting shared across replicas

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_counts",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("replica", sa.String(length=96), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "window_start", "replica", name=op.f("pk_rate_counts")),
    )
    op.create_index(op.f("ix_rate_counts_window_start"), "rate_counts", ["window_start"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_rate_counts_window_start"), table_name="rate_counts")
    op.drop_table("rate_counts")
