"""The whole-registry store of `bench_web` on PostgreSQL: the SQLite store, copied row by row.

`bench.web_seed` builds 500,000 trials inside SQLite in minutes (SQL copies of a few thousand
stored ones). PostgreSQL gets the same rows: its schema is created by TrialWatch's own migrations
(`Store` opened for writing), then every table of the schema is read through SQLAlchemy (so
SQLite's text times and integer flags come back as Python values) and written with PostgreSQL's
`COPY`, the fastest way in, tens of thousands of rows a second. Identity sequences are moved past
the copied IDs, and the tables are vacuumed and analysed (`VACUUM ANALYZE`), as autovacuum leaves
them after a first sync: planner statistics, and the visibility map that lets an index-only scan skip
the table. (A cycle's "checked" updates clear that map again until the next autovacuum; the web
view's documentation gives the deep page's figure both ways.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import JSON, Text, create_engine, select, text

from watcher.store import Store
from watcher.store.schema import Base

BATCH = 20_000


def _same(value: object) -> object:
    return value


def copy_to_postgres(sqlite_url: str, pg_url: str, progress: Callable[[str], None] = print) -> None:
    """Every row of the schema's tables in `sqlite_url`, copied into the empty database `pg_url`."""
    with Store(pg_url):  # creates the schema at the newest revision
        pass
    source = create_engine(sqlite_url)
    target = create_engine(pg_url)
    try:
        with source.connect() as reading, target.connect() as writing:
            raw = writing.connection.driver_connection
            assert raw is not None
            for table in Base.metadata.sorted_tables:
                started, count = time.perf_counter(), 0
                columns = [c.name for c in table.columns]
                # JSON documents as the text SQLite holds (COPY parses it; SQL NULL and JSON null stay
                # apart), every other value as the PostgreSQL dialect would bind it (UTC times, clean text)
                json = [isinstance(c.type, JSON) for c in table.columns]
                read = [c.cast(Text) if is_json else c for c, is_json in zip(table.columns, json, strict=True)]
                binds = [
                    _same if is_json else c.type.bind_processor(target.dialect) or _same
                    for c, is_json in zip(table.columns, json, strict=True)
                ]
                with raw.cursor() as cursor:
                    copy_sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
                    with cursor.copy(copy_sql) as copy:
                        result = reading.execution_options(yield_per=BATCH).execute(select(*read))
                        for row in result:
                            copy.write_row([bind(value) for bind, value in zip(binds, row, strict=True)])
                            count += 1
                raw.commit()
                progress(f"  {table.name}: {count:,} rows in {time.perf_counter() - started:.1f} s")
            for table in Base.metadata.sorted_tables:
                if (column := table.autoincrement_column) is not None:
                    writing.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                            f"COALESCE((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"
                        )
                    )
            writing.commit()
        with target.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        source.dispose()
        target.dispose()
