"""`Store`, the one gateway to the database: it opens it (upgrading the schema), hands out
transactions, keeps the `meta` keys and the locks between processes, and holds one collaborator
per kind of stored data:

    store.versions   the versions of each trial (`watcher.store.versions`)
    store.changes    the change log (`watcher.store.changes`)
    store.trials     each trial's state between cycles (`watcher.store.trials`)
    store.cycles     the cycle log (`watcher.store.cycles`)
    store.outbox     the notification queue (`watcher.store.outbox`)
    store.retention  storage statistics and retention (`watcher.store.retention`)
    store.discovery  what saved searches found (`watcher.store.discovery`)
    store.meta       the typed `meta` keys, each defined once (`watcher.store.meta`)
    store.browse     the watch list, one page per query (`watcher.store.browse`)

`store.transaction()` (`watcher.store.transaction`) writes a state change and the alerts it
causes in one transaction.

SQLite by default (WAL + busy timeout so CLI commands work while the service runs),
PostgreSQL for shared deployments (advisory locks let several services take turns). The tables
are in `watcher.store.schema`; ORM rows never leave the storage modules: callers get the frozen
dataclasses of `watcher.store.values` and `watcher.models`, or plain dicts. A database error
reaches callers as a one-line `StorageError` (`watcher.store.failures`).

A Store holds connections until closed: `with Store(url) as store:` (or `close()`, which may be
called again).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from watcher.errors import StorageError
from watcher.store.connection import open_engine, redact_db_url, sqlite_path, unwritable
from watcher.store.failures import database_error, reason, wrapped_bug
from watcher.store.locks import WriterLock, advisory_lock
from watcher.store.revision import HEAD, stored_revision

if TYPE_CHECKING:  # each collaborator's module is imported when first used: `status` needs five of nine
    from watcher.store.browse import Browse
    from watcher.store.changes import ChangeLog
    from watcher.store.cycles import CycleLog
    from watcher.store.discovery import DiscoveryStore
    from watcher.store.meta import Meta
    from watcher.store.outbox import OutboxQueue
    from watcher.store.retention import Retention
    from watcher.store.transaction import Transaction
    from watcher.store.trials import TrialStates
    from watcher.store.versions import Versions


class Store:
    """The one gateway to the database. Methods are small transactions."""

    def __init__(self, url: str, *, create: bool = True, read_only: bool = False) -> None:
        """`read_only` reads a SQLite file this process cannot write: no upgrade, and an error if one
        is due. Otherwise a SQLite file this process cannot write is refused at once, naming why."""
        self.url = url
        database = sqlite_path(url)
        if database is not None and not read_only:
            problem = unwritable(database)
            if problem is not None:
                raise StorageError(
                    f"{problem}; trialwatch writes the database {database} and files beside it "
                    "(fix the ownership, or run as the service's user). Commands that only read "
                    "(status, list, show, history, diff, changes, feed, db stats) work without it."
                )
        self.engine: Engine = open_engine(url, read_only=read_only)
        self._closed = False
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.dialect = self.engine.url.get_backend_name()
        self._database = database
        try:
            if read_only:
                self._require_current_schema()
            elif create:
                self.upgrade()
        except BaseException:
            self.close()  # nobody else holds the engine to close it
            raise

    # -- the collaborators, each made (and its module imported) on first use ------------------------

    @cached_property
    def versions(self) -> Versions:
        from watcher.store.versions import Versions

        return Versions(self.session, dialect=self.dialect, writer=WriterLock(self._database))

    @cached_property
    def changes(self) -> ChangeLog:
        from watcher.store.changes import ChangeLog

        return ChangeLog(self.session)

    @cached_property
    def trials(self) -> TrialStates:
        from watcher.store.trials import TrialStates

        return TrialStates(self.session)

    @cached_property
    def cycles(self) -> CycleLog:
        from watcher.store.cycles import CycleLog

        return CycleLog(self.session)

    @cached_property
    def outbox(self) -> OutboxQueue:
        from watcher.store.outbox import OutboxQueue

        return OutboxQueue(self.session, dialect=self.dialect)

    @cached_property
    def retention(self) -> Retention:
        from watcher.store.retention import Retention

        return Retention(self.session, dialect=self.dialect)

    @cached_property
    def discovery(self) -> DiscoveryStore:
        from watcher.store.discovery import DiscoveryStore

        return DiscoveryStore(self.session)

    @cached_property
    def meta(self) -> Meta:
        from watcher.store.meta import Meta

        return Meta(self.session)

    @cached_property
    def browse(self) -> Browse:
        from watcher.store.browse import Browse

        return Browse(self.session, dialect=self.dialect)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection of the pool; again is harmless."""
        if not self._closed:
            self._closed = True
            self.engine.dispose()

    def upgrade(self) -> list[str]:
        """Bring the schema to the newest revision in place; returns the revisions applied.

        A database made by the first schema (before Alembic) is recognised by its tables and
        stamped as revision 0001 first. On PostgreSQL an advisory lock lets one process migrate
        while the others wait; everyone else finds the schema current and returns at once.
        """
        try:
            if self._revision() == HEAD:  # the usual case, answered without importing Alembic
                return []
            from watcher.store.migrate import upgrade_schema

            return upgrade_schema(self.engine)
        except SQLAlchemyError as exc:
            raise self._opening_error(exc, "cannot open or upgrade the database") from exc

    def _opening_error(self, exc: SQLAlchemyError, doing: str) -> StorageError:
        """Why the schema could not be read: a damaged SQLite file said as such (its quick check's first
        problem), so that a torn write is not mistaken for a file of another program."""
        if getattr(getattr(exc, "orig", None), "sqlite_errorcode", None) in _SQLITE_DAMAGED:
            return damaged(self.url, [str(getattr(exc, "orig", exc))])
        problems: list[str] = []
        if self.dialect == "sqlite":
            with contextlib.suppress(SQLAlchemyError), self.engine.connect() as conn:  # a file it cannot open: not this
                problems = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check(20)")]
        if problems and problems != ["ok"]:
            return damaged(self.url, problems)
        return database_error(self.url, exc, doing=doing)

    def _revision(self) -> str | None:
        with self.engine.connect() as conn:
            return stored_revision(conn)

    def _require_current_schema(self) -> None:
        try:
            if self._revision() == HEAD:  # the usual case, answered without importing Alembic
                return
            from watcher.store.migrate import schema_behind

            behind = schema_behind(self.engine)
        except SQLAlchemyError as exc:
            raise self._opening_error(exc, "cannot read the database") from exc
        if behind is not None and behind.startswith("empty"):
            raise StorageError(
                f"no database at {redact_db_url(self.url)}: it holds no tables; run `trialwatch check` first"
            )
        if behind is not None:
            database = sqlite_path(self.url)
            why = (unwritable(database) if database else None) or "it was opened read-only"
            raise StorageError(
                f"{redact_db_url(self.url)} needs a schema upgrade ({behind}), but {why}: run "
                "`trialwatch db upgrade` (or start the service) as a user who can write it"
            )

    def integrity(self, *, quick: bool = False) -> list[str]:
        """SQLite's own check of the file (`PRAGMA quick_check`, or the slower `integrity_check` that
        also compares indexes with their tables): [] when sound, else its first problems. PostgreSQL
        checks its pages as it reads them: []."""
        if self.dialect != "sqlite":
            return []
        pragma = "quick_check" if quick else "integrity_check"
        try:
            with self.engine.connect() as conn:
                rows = [str(row[0]) for row in conn.exec_driver_sql(f"PRAGMA {pragma}(20)")]
        except SQLAlchemyError as exc:
            return [reason(exc, self.url)]
        return [] if rows == ["ok"] else rows

    def schema_revision(self) -> str | None:
        from watcher.store.migrate import current_revision

        try:
            return current_revision(self.engine)
        except SQLAlchemyError as exc:
            raise database_error(self.url, exc, doing="cannot read the schema revision of") from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises. A database
        error becomes a `StorageError`; any other exception (a bug) goes on as it is."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            bug = wrapped_bug(exc)
            if bug is not None:
                raise bug from exc
            raise database_error(self.url, exc) from exc
        except StorageError as exc:  # found wrong by our own reading (a part missing): name the database
            session.rollback()
            where = redact_db_url(self.url)
            if where in str(exc):
                raise
            raise StorageError(f"{where}: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction for a state change and the messages it causes (`watcher.store.transaction`)."""
        from watcher.store.transaction import Transaction

        with self.session() as s:
            yield Transaction(s)

    # -- locks between processes -------------------------------------------------------------------

    def exclusive(self, name: str, *, wait: bool = False) -> AbstractContextManager[bool]:
        """Hold the named lock between processes for the block (see `advisory_lock`)."""
        return advisory_lock(self.engine, name, wait=wait)


_SQLITE_DAMAGED = frozenset({11, 26})
"""SQLITE_CORRUPT ("database disk image is malformed") and SQLITE_NOTADB ("file is not a database")."""


def damaged(url: str, problems: list[str]) -> StorageError:
    """The error for a SQLite file its own check finds damaged, naming the first problem."""
    return StorageError(
        f"the database {redact_db_url(url)} is damaged (PRAGMA quick_check: {problems[0]}); "
        "restore it from a backup (`trialwatch doctor` runs the full integrity check)"
    )
