"""When the service applies retention: a decision of housekeeping, apart from the mechanism."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.store.retention import retention_due

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_run", "keep_versions", "keep_days", "due"),
    [
        (None, None, None, False),  # no limit set: nothing to apply, ever
        (NOW - timedelta(days=3), None, None, False),
        (None, 5, None, True),  # never applied
        (None, None, timedelta(days=30), True),
        (NOW - timedelta(hours=23, minutes=59), 5, None, False),  # at most daily: it scans every version
        (NOW - timedelta(days=1), 5, None, True),
        (NOW - timedelta(days=40), None, timedelta(days=30), True),
    ],
)
def test_retention_is_due_at_most_daily_and_only_with_a_limit(
    last_run: datetime | None, keep_versions: int | None, keep_days: timedelta | None, due: bool
) -> None:
    assert retention_due(last_run, NOW, keep_versions=keep_versions, keep_days=keep_days) is due
