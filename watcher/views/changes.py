"""Questions asked of stored history: what changed, when, between which versions.

Pure helpers over plain values (parsing `--since`/`--from`, filtering by field glob and
severity, JSON/CSV rows) plus `diff_versions`, which recomputes the changes between any two
stored versions with the same field extraction, diff and classification the poller uses.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from watcher.detect import changes_between
from watcher.detect.catalog import is_bookkeeping
from watcher.detect.meaning import SeverityRules
from watcher.models import SEVERITY_RANK, Change, StoredChange, change_to_dict
from watcher.store import Store
from watcher.store.values import VersionInfo
from watcher.times import utc

_RELATIVE = re.compile(r"^(\d+)\s*([dhwm])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "m": timedelta(minutes=1)}

CSV_COLUMNS = ("nct_id", "version", "detected_at", "field", "change", "old", "new", "severity", "event", "baseline")


class QueryError(ValueError):
    """A query the user can fix: a bad date, an unknown version (the CLI exits 2)."""


def parse_when(text: str, *, now: datetime) -> datetime:
    """`7d`, `12h`, `2w` (ago), `2026-03-01` (its start, UTC) or an ISO date-time (UTC if naive)."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{text!r} is not a date (2026-03-01), a date-time or an age such as 7d or 12h") from None
    return utc(parsed)


def field_matches(name: str, globs: Sequence[str]) -> bool:
    return not globs or any(fnmatchcase(name, g) for g in globs)


def select_changes(
    items: Iterable[StoredChange],
    *,
    fields: Sequence[str] = (),
    min_severity: str | None = None,
    include_bookkeeping: bool = True,
) -> list[StoredChange]:
    floor = SEVERITY_RANK.get(min_severity, 0) if min_severity else 0
    return [
        i
        for i in items
        if field_matches(i.change.field, fields)
        and SEVERITY_RANK.get(i.change.severity, 0) >= floor
        and (include_bookkeeping or not is_bookkeeping(i.change.field))
    ]


def change_row(item: StoredChange) -> dict[str, Any]:
    """The JSON object of one stored change (the keys `history --json` has always had)."""
    return {
        "nct_id": item.nct_id,
        "version": item.version,
        "detected_at": item.detected_at.isoformat(),
        **change_to_dict(item.change),
        "baseline": item.baseline,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV with a header; old/new values that are not text are JSON, the event is its summary."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        event = row.get("event")
        cells = dict(
            row,
            event=event.get("summary") if isinstance(event, Mapping) else None,
            baseline="true" if row.get("baseline") else "false",
        )
        writer.writerow([_cell(cells.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


# -- diff between stored versions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionDiff:
    nct_id: str
    old: VersionInfo
    new: VersionInfo
    changes: list[Change]


def resolve_version(infos: Sequence[VersionInfo], spec: str | None, *, default: int, now: datetime) -> VersionInfo:
    """A version from `spec`: a number (`3`, `v3`), a date or date-time (the version current at its
    end), an age (`7d`), or None for `default` (an index into `infos`, e.g. -1 for the latest)."""
    if not infos:
        raise QueryError("no versions stored")
    if spec is None:
        return infos[default]
    text = spec.strip().lower().removeprefix("v")
    if text.isdigit():
        number = int(text)
        for info in infos:
            if info.version == number:
                return info
        raise QueryError(f"no version {number} (stored: {infos[0].version}–{infos[-1].version})")
    when = parse_when(spec, now=now)
    if len(spec.strip()) == 10:  # a plain date means "as of the end of that day"
        when += timedelta(days=1) - timedelta(microseconds=1)
    current = [i for i in infos if i.fetched_at <= when]
    if not current:
        raise QueryError(f"no version was stored by {spec} (the first is from {infos[0].fetched_at:%Y-%m-%d})")
    return current[-1]


def diff_versions(store: Store, nct_id: str, old: VersionInfo, new: VersionInfo, rules: SeverityRules) -> VersionDiff:
    records = []
    for info in (old, new):
        snapshot = store.versions.get(nct_id, info.version)
        if snapshot is None:
            raise QueryError(
                f"version {info.version} of {nct_id} was pruned by retention (storage.keep_*); "
                "its changes are still in `trialwatch history`"
            )
        records.append(snapshot.record)
    changes = changes_between(records[0], records[1], rules)
    return VersionDiff(nct_id, old, new, changes)
