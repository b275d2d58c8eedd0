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


def span(seconds: float) -> str:
    """A length of time as people read it: `42s`, `17m`, `5h 3m`, `3d`."""
    whole = int(abs(seconds))
    if whole < 90:
        return f"{whole}s"
    if whole < 5400:
        return f"{whole // 60}m"
    if whole < 172800:
        return f"{whole // 3600}h {whole % 3600 // 60}m"
    return f"{whole // 86400}d"


def relative(moment: datetime, now: datetime) -> str:
    """`in 5m` for a time to come, `11s ago` for one past: one wording for each, never both at once."""
    seconds = (utc(moment) - utc(now)).total_seconds()
    return f"in {span(seconds)}" if seconds > 0 else f"{span(seconds)} ago"
