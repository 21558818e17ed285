"""drop the index on sessions.client_id alone: (client_id, created_at, session_id) serves
every lookup by client, and each index more is a page more to write per session change

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sessions_client_id", table_name="sessions")


def downgrade() -> None:
    op.create_index("ix_sessions_client_id", "sessions", ["client_id"])
