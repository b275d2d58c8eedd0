"""Discovery: the studies each saved search has matched, and the no-edit alerts sent.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_matches",
        sa.Column("search", sa.String(64), primary_key=True),
        sa.Column("nct_id", sa.String(16), primary_key=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("baseline", sa.Boolean(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
    )
    op.create_table(
        "noedit_events",
        sa.Column("nct_id", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("noedit_events")
    op.drop_table("search_matches")
