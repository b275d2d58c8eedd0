"""Moments in UTC: the clock, and times read back from storage or text.

Every time TrialWatch keeps is UTC, but not every place it comes back from says so: SQLite keeps
no zone, so its datetimes come back naive, and so may an injected clock in a test. A naive time is
therefore read as UTC — one rule, here, rather than a copy of it in each module that compares times.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive one is taken to be UTC already."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_utc(text: object) -> datetime | None:
    """An ISO 8601 time as written by `datetime.isoformat()`, in UTC; None for anything else
    (absent, not text, not a time): a stored time that cannot be read counts as never set."""
    if not isinstance(text, str):
        return None
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def minute(moment: datetime) -> str:
    """`2026-11-22 09:15 UTC`: a time as messages and `status` show it to people."""
    return utc(moment).strftime("%Y-%m-%d %H:%M UTC")
