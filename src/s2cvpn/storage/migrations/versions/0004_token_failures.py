"""failed client authentications, shared by the replicas (token endpoint lockouts)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from s2cvpn.storage.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_failures",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("last_failure_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_token_failures")),
    )
    op.create_index(op.f("ix_token_failures_last_failure_at"), "token_failures", ["last_failure_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_token_failures_last_failure_at"), table_name="token_failures")
    op.drop_table("token_failures")
