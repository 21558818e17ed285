"""jobs.begun_at: when a worker began the job's work (the provisioning handler sets it in
its first statement, before it touches the network). A delete withdraws a provisioning
not begun, claimed or not; before, a claimed job already counted as begun, and a delete
that came between the claim and the handler's first read paid for a teardown of nothing.

Jobs attempted before this revision (``attempts > 0``) count as begun: one of them may
have touched the network.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("begun_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE jobs SET begun_at = created_at WHERE attempts > 0")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("begun_at")
