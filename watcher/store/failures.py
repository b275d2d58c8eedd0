"""What a database failure means to the person who sees it: one line naming what failed, which
database (its URL without the password) and what to do.

SQLAlchemy's own message spans several lines (the SQL, a page of parameters, a link), and a trial's
storage failure is shown in `status` and alerts; so the database's reason is cut to its first line
and a piece of advice is chosen from it. Only database errors become a `StorageError`: a
`StatementError` that is not a `DBAPIError` wraps a Python exception raised while the statement was
built (a value our code could not encode), which is a bug, raised as itself (`wrapped_bug`).
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError

from watcher.errors import StorageError
from watcher.store.connection import current_user, redact_db_url, sqlite_path


def wrapped_bug(exc: SQLAlchemyError) -> BaseException | None:
    """The Python exception a `StatementError` that is no `DBAPIError` wraps (a TypeError in a bind
    value, say): a bug in our code, to be raised as itself. None for the database's own errors."""
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError) and isinstance(exc.orig, BaseException):
        return exc.orig
    return None


def database_error(url: str, exc: SQLAlchemyError, *, doing: str = "database error on") -> StorageError:
    """The StorageError for `exc`, met on the database at `url`: `doing` and the redacted URL, the
    database's reason, what to do. Raise it `from exc`, so the log keeps the whole story."""
    why = reason(exc, url)
    return StorageError(f"{doing} {redact_db_url(url)}: {why}; {advice(why, url)}")


def reason(exc: BaseException, url: str = "") -> str:
    """The first line of the driver's own message, without SQLAlchemy's SQL, parameters and link."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = next((line.strip() for line in str(cause).splitlines() if line.strip()), type(cause).__name__)
    password = make_url(url).password if url else None
    return text.replace(str(password), "***") if password else text


_DATABASE_ON = re.compile(r"\b(database error on|cannot open database|cannot [a-z ]+?) [a-z0-9+]+://\S*?:(?=\s)")
_BRACKETED = re.compile(r"\[(SQL|parameters):.*?\](?=\s|$)|\(Background on this error at:[^)]*\)", re.DOTALL)
ALERT_REASON_MAX = 300


def alert_reason(error: str) -> str:
    """An error fit for an alert, which goes to chat rooms and mailboxes: its first line, without SQL or
    parameters, without the database's address (host, port, user, name: the log has them), bounded."""
    text = _BRACKETED.sub("", error)
    text = next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")
    text = _DATABASE_ON.sub(lambda m: f"{m.group(1)} the database:", text)
    text = re.sub(r"[a-z0-9+]+://\S+", "<database>", text) if "://" in text else text
    return text if len(text) <= ALERT_REASON_MAX else text[: ALERT_REASON_MAX - 1] + "…"


# The database's own words (SQLite's messages, PostgreSQL's and psycopg's), first match wins.
_ADVICE: tuple[tuple[str, str], ...] = (
    (
        r"not a database|malformed|corrupt",
        "the file is damaged or is not a TrialWatch database: restore it from a backup, or set storage.url "
        "to another file",
    ),
    (r"disk is full|no space", "free space on {where}, then try again"),
    (r"disk i/o error", "check {where}: it may be full, read-only or gone"),
    (
        r"readonly|read-only|permission denied",
        "make the database writable by user {user}, or run as the service's user",
    ),
    (r"locked|busy", "another process holds the database: try again when it is done"),
    (r"password authentication failed|role .* does not exist", "check the user name and password in storage.url"),
    (r'database ".*" does not exist', "create that database, or correct its name in storage.url"),
    (
        r"no such (table|column)|relation .* does not exist",
        "its tables are not the ones TrialWatch made: run `trialwatch db upgrade`, or restore it from a backup",
    ),
    (
        r"violates|constraint|cannot contain|invalid input|out of range|too long",
        "the database refused the data written (an unusual record, or a bug: report it if it repeats)",
    ),
    (
        r"connect|timeout|timed out|host|server closed|terminat",
        "check that the database server is running and reachable at the host and port of storage.url",
    ),
)


def advice(why: str, url: str) -> str:
    """What to do about a database failure, judged from the database's own words."""
    database = sqlite_path(url)
    if "unable to open database file" in why:
        return _cannot_open(database)
    where = f"the disk that holds {database}" if database else "the database server's disk"
    for pattern, text in _ADVICE:
        if re.search(pattern, why, re.IGNORECASE):
            return text.format(where=where, user=current_user())
    return "check that the database named by storage.url is reachable and intact, then try again"


def _cannot_open(database: Path | None) -> str:
    if database is None:
        return "check storage.url"
    if database.is_dir():
        return f"{database} is a folder: set storage.url to a file, or move the folder away"
    return f"check that {database} and its folder exist and are readable and writable by user {current_user()}"
