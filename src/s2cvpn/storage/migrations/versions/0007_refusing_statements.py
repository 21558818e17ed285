"""s2cvpn_refuse(reason): raises SQLSTATE S2001 with ``reason``, on PostgreSQL only. A
single-statement write whose guard fails after it wrote (``storage.acceptance``: no room
left on a counter once the row went in) calls it, and the whole statement is undone.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION s2cvpn_refuse(reason text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS "
        "$$ BEGIN RAISE EXCEPTION USING ERRCODE = 'S2001', MESSAGE = reason; END $$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS s2cvpn_refuse(text)")
