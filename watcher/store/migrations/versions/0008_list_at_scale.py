"""The watch list at whole-registry size: a word index for its text search, a completion date column
for the upcoming-dates page, indexes that hold each sort's whole key.

The sort indexes end with `nct_id`, the sorts' tie-break, so a page deep in the list (OFFSET 250,000)
walks one index and reads only its 50 rows; the status index serves the status filter sorted by last
change the same way.

A `LIKE '%word%'` search reads every row: at 500,000 trials that is seconds a query. The word index
answers it from the words' lists instead: SQLite's FTS5 (an external-content table over `trials`,
kept in step by triggers that fire only when a title, conditions or sponsor is written, never on
the per-cycle "checked" updates), PostgreSQL's GIN index over a `tsvector` of the same columns.
Both match whole words and word prefixes (`canc` finds "cancer"), case-insensitively.

`completion` follows the newest version like `primary_completion` does (rows written before this
revision get it from revision 0009).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SEARCHED = "coalesce(title, '') || ' ' || coalesce(conditions, '') || ' ' || coalesce(sponsor, '')"
SQLITE_UP = (
    "CREATE VIRTUAL TABLE trials_search USING fts5(title, conditions, sponsor, content='trials', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER trials_search_insert AFTER INSERT ON trials BEGIN "
    "INSERT INTO trials_search(rowid, title, conditions, sponsor) "
    "VALUES (new.rowid, new.title, new.conditions, new.sponsor); END",
    "CREATE TRIGGER trials_search_delete AFTER DELETE ON trials BEGIN "
    "INSERT INTO trials_search(trials_search, rowid, title, conditions, sponsor) "
    "VALUES ('delete', old.rowid, old.title, old.conditions, old.sponsor); END",
    "CREATE TRIGGER trials_search_update AFTER UPDATE OF title, conditions, sponsor ON trials BEGIN "
    "INSERT INTO trials_search(trials_search, rowid, title, conditions, sponsor) "
    "VALUES ('delete', old.rowid, old.title, old.conditions, old.sponsor); "
    "INSERT INTO trials_search(rowid, title, conditions, sponsor) "
    "VALUES (new.rowid, new.title, new.conditions, new.sponsor); END",
    "INSERT INTO trials_search(trials_search) VALUES ('rebuild')",
)
SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS trials_search_update",
    "DROP TRIGGER IF EXISTS trials_search_delete",
    "DROP TRIGGER IF EXISTS trials_search_insert",
    "DROP TABLE IF EXISTS trials_search",
)
POSTGRES_UP = (
    f"CREATE INDEX ix_trials_search ON trials USING gin (to_tsvector('simple', {SEARCHED}))",
    # The list's default order, newest change first and never-changed trials last, is `DESC NULLS LAST`:
    # PostgreSQL reads an ascending index backwards only as `DESC NULLS FIRST`, so without these it sorts
    # every row (SQLite, whose NULLs sort first, reads ix_trials_changed backwards in exactly this order).
    "CREATE INDEX ix_trials_changed_desc ON trials (last_changed_at DESC NULLS LAST, nct_id DESC)",
    "CREATE INDEX ix_trials_status_desc ON trials (overall_status, last_changed_at DESC NULLS LAST, nct_id DESC)",
)
POSTGRES_DOWN = (
    "DROP INDEX IF EXISTS ix_trials_search",
    "DROP INDEX IF EXISTS ix_trials_changed_desc",
    "DROP INDEX IF EXISTS ix_trials_status_desc",
)


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("completion", sa.String(10), nullable=True))
    op.drop_index("ix_trials_last_changed", table_name="trials")
    op.drop_index("ix_trials_primary_completion", table_name="trials")
    op.create_index("ix_trials_changed", "trials", ["last_changed_at", "nct_id"])
    op.create_index("ix_trials_next_date", "trials", ["primary_completion", "nct_id"])
    op.create_index("ix_trials_completion", "trials", ["completion"])
    op.create_index("ix_trials_status", "trials", ["overall_status", "last_changed_at", "nct_id"])
    op.create_index("ix_trials_status_date", "trials", ["overall_status", "primary_completion", "nct_id"])
    for statement in SQLITE_UP if op.get_bind().dialect.name == "sqlite" else POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else POSTGRES_DOWN:
        op.execute(statement)
    op.drop_index("ix_trials_status_date", table_name="trials")
    op.drop_index("ix_trials_status", table_name="trials")
    op.drop_index("ix_trials_completion", table_name="trials")
    op.drop_index("ix_trials_next_date", table_name="trials")
    op.drop_index("ix_trials_changed", table_name="trials")
    op.create_index("ix_trials_last_changed", "trials", ["last_changed_at"])
    op.create_index("ix_trials_primary_completion", "trials", ["primary_completion"])
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("completion")
