"""The web view: what the watch list searches and sorts by, kept on each trial's row.

Sponsor, conditions and primary completion date follow the newest version like the title does;
rows written before this revision get them from revision 0009 (until then a search by sponsor or
condition did not find them, and they sorted last by date). Indexes let the list page
sort 500,000 trials by last change or date with LIMIT/OFFSET.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("sponsor", sa.Text(), nullable=True))
        batch.add_column(sa.Column("conditions", sa.Text(), nullable=True))
        batch.add_column(sa.Column("primary_completion", sa.String(10), nullable=True))
    op.create_index("ix_trials_last_changed", "trials", ["last_changed_at"])
    op.create_index("ix_trials_primary_completion", "trials", ["primary_completion"])


def downgrade() -> None:
    op.drop_index("ix_trials_primary_completion", table_name="trials")
    op.drop_index("ix_trials_last_changed", table_name="trials")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("primary_completion")
        batch.drop_column("conditions")
        batch.drop_column("sponsor")
