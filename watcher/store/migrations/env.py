"""Alembic environment: migrations run on the connection `watcher.store.migrate` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from watcher.store.schema import Base, is_unmodelled_index

config = context.config
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Revision 0008's word index (an FTS5 table, a GIN index) is no model: autogenerate leaves it be."""
    return not is_unmodelled_index(name)


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` on the command line, with sqlalchemy.url in alembic.ini
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            context.configure(
                connection=conn, target_metadata=target_metadata, render_as_batch=True, include_name=include_name
            )
            context.run_migrations()
        return
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, include_name=include_name
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `trialwatch db upgrade`")
run()
