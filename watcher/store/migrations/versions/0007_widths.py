"""Widths that fit what the registry sends: a trial's overall status as text of any length.

PostgreSQL refuses a value longer than a VARCHAR's width (SQLite stores it); a registry status over
40 characters made that trial fail every cycle on PostgreSQL. NUL characters, which PostgreSQL
refuses too, are dropped as values are written (`CleanText`, the JSON serializer): no schema change.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.alter_column("overall_status", type_=sa.Text(), existing_type=sa.String(40), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.alter_column("overall_status", type_=sa.String(40), existing_type=sa.Text(), existing_nullable=True)
