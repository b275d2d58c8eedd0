"""Which changes reach people: bookkeeping defaults, `ignore:` / `only:` globs, `min_severity:`.

Every change is kept in history; this stage only decides what is notified. Patterns are
shell globs (`fnmatch`, case-sensitive) on the field name, and a pattern that names a
field also covers its sub-fields: `eligibility.criteria` matches
`eligibility.criteria.inclusion.3`, `locations.*` matches every site and its sub-fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from watcher.detect.catalog import CATALOG
from watcher.models import SEVERITY_RANK, Change, Severity

BOOKKEEPING: tuple[str, ...] = (
    *(spec.name for spec in CATALOG if spec.bookkeeping and not spec.name.startswith("derived.")),
    "derived.*",
)
"""Fields that churn without any sponsor edit (last-update dates, status-verified date,
everything in `derivedSection`): kept in history, not notified unless asked for."""


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether a field name, or a field it is a sub-field of, matches any glob."""
    return any(fnmatchcase(name, pattern) or fnmatchcase(name, pattern + ".*") for pattern in patterns)


def notifiable(
    change: Change,
    *,
    ignore: Sequence[str] = (),
    only: Sequence[str] = (),
    min_severity: Severity | None = None,
    include_bookkeeping: bool = False,
) -> bool:
    """Whether a change should be sent: not bookkeeping, within `only`, outside `ignore`,
    and at least `min_severity`. Bookkeeping needs `include_bookkeeping`, even under `only`."""
    if not include_bookkeeping and matches(change.field, BOOKKEEPING):
        return False
    if only and not matches(change.field, only):
        return False
    if ignore and matches(change.field, ignore):
        return False
    return min_severity is None or SEVERITY_RANK[change.severity] >= SEVERITY_RANK[min_severity]
