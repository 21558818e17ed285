"""events hold what a status event tells (status, status_info, started_at, ended_at,
actual) instead of the CloudEvent itself, which the worker renders when it posts, and
when the sink's access token expires (``access_token_expires_at``: an event whose token
has expired is not sent, as CAMARA says the consumer then stops receiving them). So a
delete's statement writes its session's event from the row it locks, in the same
statement (``storage.withdrawal``), where before it handed the row's values back to be
rendered and asked again.

Events written before this revision keep their body, and are posted with it. A worker of
a release before this one would post an event written since with an empty body: stop
those workers before replicas of this release start (deploy/README.md, upgrades).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("access_token_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("status_info", sa.String(32), nullable=True))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("actual", sa.JSON(), nullable=True))
        batch.alter_column("body", existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    # an event written since has no body: it is dropped, as a sink that was never told
    op.execute("DELETE FROM events WHERE body IS NULL")
    with op.batch_alter_table("events") as batch:
        batch.alter_column("body", existing_type=sa.JSON(), nullable=False)
        for column in ("actual", "ended_at", "started_at", "status_info", "status", "access_token_expires_at"):
            batch.drop_column(column)
