"""Plain values shared by every stage of the data flow.

Stages exchange these frozen dataclasses (or plain JSON-like data), never ORM rows,
httpx responses or DeepDiff results, so each stage can be tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Json = Any
"""A JSON-compatible value: None, bool, int, float, str, list or dict of those."""

ChangeKind = Literal["added", "removed", "changed"]
Severity = Literal["minor", "major", "critical"]

SEVERITIES: tuple[Severity, ...] = ("minor", "major", "critical")
SEVERITY_RANK: Mapping[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}

STUDY_URL = "https://clinicaltrials.gov/study/{nct_id}"
HISTORY_URL = "https://clinicaltrials.gov/study/{nct_id}?tab=history"


def study_url(nct_id: str) -> str:
    return STUDY_URL.format(nct_id=nct_id)


def history_url(nct_id: str) -> str:
    return HISTORY_URL.format(nct_id=nct_id)


CTGOV_COMPARE = "https://clinicaltrials.gov/study/{nct_id}?tab=history&a={a}&b={b}#version-content-panel"
"""ClinicalTrials.gov's own side-by-side comparison of two versions of a record: the address its
Record History tab's "Compare" opens, `a` and `b` being the versions as the site shows them (from 1)."""


def compare_url(nct_id: str, old: int, new: int) -> str:
    """ClinicalTrials.gov's comparison of two versions given by their record-history numbers, which
    count from 0 (the record history's API); its pages count from 1."""
    return CTGOV_COMPARE.format(nct_id=nct_id, a=old + 1, b=new + 1)


def is_registry_compare(url: str) -> bool:
    """Whether `url` is ClinicalTrials.gov's comparison of two versions (`compare_url`)."""
    head, _, _ = CTGOV_COMPARE.partition("{nct_id}")
    return url.startswith(head) and "?tab=history&a=" in url


def registry_changes_url(nct_id: str, ctgov_versions: tuple[int, int] | None = None) -> str:
    """Where ClinicalTrials.gov lists every change between two versions: its comparison of them when
    both numbers are known (`compare_url`), else the trial's record history."""
    return compare_url(nct_id, *ctgov_versions) if ctgov_versions is not None else history_url(nct_id)


@dataclass(frozen=True, slots=True)
class Event:
    """The clinical meaning of a change, e.g. a status transition or a date slip.

    `kind` is a stable identifier (`status_transition`, `date_slip`, ...), `summary` a
    sentence for people, `data` the numbers behind it for machines (webhooks, JSON).
    """

    kind: str
    summary: str
    data: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    """One field of one trial that differs between two versions of its record."""

    field: str
    change: ChangeKind
    old: Json = None
    new: Json = None
    severity: Severity = "minor"
    event: Event | None = None


def change_to_dict(change: Change) -> dict[str, Json]:
    """A change as plain JSON data: the shape stored, sent to webhooks and printed by `--json`."""
    event = None
    if change.event is not None:
        event = {"kind": change.event.kind, "summary": change.event.summary, "data": dict(change.event.data)}
    return {
        "field": change.field,
        "change": change.change,
        "old": change.old,
        "new": change.new,
        "severity": change.severity,
        "event": event,
    }


@dataclass(frozen=True, slots=True)
class StoredChange:
    """A change as history knows it: which trial, which version, when it was seen."""

    id: int
    nct_id: str
    version: int
    detected_at: datetime
    change: Change
    baseline: bool = False


@dataclass(frozen=True, slots=True)
class Near:
    """`near:` of a trial, tag or search: a point (or a place name resolved from the record's own
    site geoPoints, since the registry geocodes every site) and a radius in km."""

    km: float
    lat: float | None = None
    lon: float | None = None
    place: str | None = None
    channels: tuple[str, ...] | None = None  # None: the trial's own channels


@dataclass(frozen=True, slots=True)
class Trial:
    """One watched trial, as the watchlist describes it."""

    nct_id: str
    label: str | None = None
    channels: tuple[str, ...] | None = None  # None: every channel; (): none (an unlisted registry study)
    tags: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    min_severity: Severity | None = None
    interval: timedelta | None = None
    line: int | None = None  # where the watchlist declares it, for error messages
    near: Near | None = None  # new or newly recruiting sites within this distance are their own event
    source: str | None = None  # None: listed in the watchlist; "search:<name>": found by that search

    @property
    def display(self) -> str:
        return f"{self.nct_id} ({self.label})" if self.label else self.nct_id


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One distinct version of a trial's record."""

    nct_id: str
    version: int
    fetched_at: datetime
    content_hash: str
    record: Mapping[str, Json]
    ctgov_version: int | None = None  # ClinicalTrials.gov's number of this version (from 0), when known
