"""The trial page of the web view and the static site, as values for its template.

The page is the product's model mirror page (the markdown of `watcher.views.trial_page`) with what
a browser can add: each change's old and new value with its word diff, every site with its status,
the version timeline and the date-slip chart (`watcher.views.chart`). Everything here is plain
data; the template escapes every text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watcher.config import Config
from watcher.detect.catalog import is_bookkeeping
from watcher.detect.describe import Segment, change_diff, change_texts, event_sentence, field_label
from watcher.detect.fields import extract_fields
from watcher.detect.meaning import SeverityRules
from watcher.detect.priority import order_key
from watcher.detect.record import last_update_of, overall_status_of, title_of
from watcher.models import Change, Snapshot, StoredChange, change_to_dict, compare_url, history_url, study_url
from watcher.store import Store
from watcher.store.blobstore import chunks
from watcher.store.values import VersionInfo
from watcher.views.chart import render_chart, series


@dataclass(frozen=True, slots=True)
class ChangeView:
    """One field change as the page shows it: old → new, or the word diff of a long text. `label` is
    the field in words (a site by its facility and place, never its internal key); `field` the path."""

    field: str
    label: str
    kind: str
    severity: str
    old: str
    new: str
    diff: list[Segment] | None
    sentence: str | None
    version: int | None = None
    detected_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Site:
    where: str
    status: str | None


@dataclass(frozen=True, slots=True)
class TrialView:
    nct_id: str
    title: str
    official_title: str | None
    facts: list[tuple[str, str]]
    summary: str | None
    eligibility: list[tuple[str, str]]
    criteria: str | None
    arms: list[tuple[str, str | None, str | None]]
    interventions: list[tuple[str, str | None, str | None]]
    outcomes: list[tuple[str, str | None]]
    sites: list[Site]
    recent: list[ChangeView]
    days: int
    versions: list[VersionInfo]
    chart: str
    tags: tuple[str, ...]
    study_url: str
    history_url: str


def change_view(change: Change, *, version: int | None = None, detected_at: datetime | None = None) -> ChangeView:
    data = change_to_dict(change)
    old, new = change_texts(data)
    event = data.get("event")
    spelled = event.get("data") if isinstance(event, Mapping) else None
    return ChangeView(
        field=change.field,
        label=field_label(change.field, spelled if isinstance(spelled, Mapping) else None),
        kind=change.change,
        severity=change.severity,
        old=old,
        new=new,
        diff=change_diff(data),
        sentence=event_sentence(data),
        version=version,
        detected_at=detected_at,
    )


def ctgov_compare_url(nct_id: str, old: VersionInfo, new: VersionInfo) -> str | None:
    """ClinicalTrials.gov's own comparison of the two versions, when both came with its version
    number (0-based in its API; its pages count from 1)."""
    if old.ctgov_version is None or new.ctgov_version is None:
        return None
    return compare_url(nct_id, old.ctgov_version, new.ctgov_version)


def _get(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _text(value: Any) -> str:
    return " ".join(str(value).split())


def _facts(study: Mapping[str, Any], ps: Mapping[str, Any]) -> list[tuple[str, str]]:
    enrollment = _get(ps, "designModule.enrollmentInfo") or {}
    label = "Actual Enrollment" if enrollment.get("type") == "ACTUAL" else "Target Enrollment"
    collaborators = [c.get("name") for c in _get(ps, "sponsorCollaboratorsModule.collaborators") or []]
    facts = (
        ("Status", overall_status_of(study)),
        ("Phase", ", ".join(_get(ps, "designModule.phases") or [])),
        ("Study Type", _get(ps, "designModule.studyType")),
        (label, enrollment.get("count")),
        ("Lead Sponsor", _get(ps, "sponsorCollaboratorsModule.leadSponsor.name")),
        ("Collaborators", ", ".join(str(c) for c in collaborators if c)),
        ("Conditions", ", ".join(_get(ps, "conditionsModule.conditions") or [])),
        ("Start Date", _get(ps, "statusModule.startDateStruct.date")),
        ("Primary Completion Date", _get(ps, "statusModule.primaryCompletionDateStruct.date")),
        ("Completion Date", _get(ps, "statusModule.completionDateStruct.date")),
        ("CT.gov Last Update", last_update_of(study)),
    )
    return [(name, _text(value)) for name, value in facts if value not in (None, "")]


def _eligibility(ps: Mapping[str, Any]) -> list[tuple[str, str]]:
    el = ps.get("eligibilityModule") or {}
    healthy = el.get("healthyVolunteers")
    facts = (
        ("Minimum age", el.get("minimumAge")),
        ("Maximum age", el.get("maximumAge")),
        ("Sex", el.get("sex")),
        ("Healthy Volunteers", None if healthy is None else ("Yes" if healthy else "No")),
    )
    return [(name, _text(value)) for name, value in facts if value not in (None, "")]


def _items(items: Sequence[Mapping[str, Any]], name_key: str) -> list[tuple[str, str | None, str | None]]:
    return [
        (_text(i.get(name_key, "")), i.get("type"), _text(i["description"]) if i.get("description") else None)
        for i in items
    ]


def _sites(ps: Mapping[str, Any]) -> list[Site]:
    sites = _get(ps, "contactsLocationsModule.locations") or []
    return [
        Site(", ".join(_text(s[k]) for k in ("facility", "city", "state", "country") if s.get(k)), s.get("status"))
        for s in sites
    ]


def recent_changes(changes: Sequence[StoredChange], *, since: datetime, bookkeeping: bool) -> list[ChangeView]:
    """Changes detected since `since`, newest first (clinical priority within one version)."""
    window = [c for c in changes if c.detected_at >= since and (bookkeeping or not is_bookkeeping(c.change.field))]
    window.sort(key=lambda c: order_key(change_to_dict(c.change)))
    window.sort(key=lambda c: (c.detected_at, c.version), reverse=True)
    return [change_view(c.change, version=c.version, detected_at=c.detected_at) for c in window]


@dataclass(frozen=True, slots=True)
class TrialData:
    """What a trial's pages are made from, read once: its newest version, every version, its changes."""

    latest: Snapshot
    infos: list[VersionInfo]
    changes: list[StoredChange]


def load_trial(store: Store, nct_id: str) -> TrialData | None:
    latest = store.versions.latest(nct_id)
    if latest is None:
        return None
    return TrialData(latest, store.versions.infos(nct_id), store.changes.of(nct_id, include_baseline=False))


def load_trials(store: Store, nct_ids: Sequence[str]) -> dict[str, TrialData]:
    """`load_trial` of each of these trials in a few queries for them all (the static site reads
    its trials a page at a time: one query each per trial was most of a full build's time)."""
    latest = store.versions.latest_many(nct_ids)
    infos = store.versions.infos_many(list(latest))
    changes: dict[str, list[StoredChange]] = {}
    for chunk in chunks(sorted(latest), 500):
        for change in store.changes.across(nct_ids=chunk):
            changes.setdefault(change.nct_id, []).append(change)
    return {n: TrialData(latest[n], infos.get(n, []), changes.get(n, [])) for n in latest}


def trial_view(config: Config, store: Store, nct_id: str, *, now: datetime, days: int = 30) -> TrialView | None:
    """The page of one stored trial, or None when nothing is stored for it."""
    data = load_trial(store, nct_id)
    return None if data is None else view_of(config, data, now=now, days=days)


def view_of(config: Config, data: TrialData, *, now: datetime, days: int = 30) -> TrialView:
    study = data.latest.record
    nct_id = data.latest.nct_id
    ps: Mapping[str, Any] = study.get("protocolSection") or {}
    points = series([i.version for i in data.infos], extract_fields(study), data.changes)
    tags = next((t.tags for t in config.watchlist.trials if t.nct_id == nct_id), ())
    arms = _get(ps, "armsInterventionsModule.armGroups") or []
    criteria = str(_get(ps, "eligibilityModule.eligibilityCriteria") or "").strip() or None
    return TrialView(
        nct_id=nct_id,
        title=_text(title_of(study) or nct_id),
        official_title=_get(ps, "identificationModule.officialTitle"),
        facts=_facts(study, ps),
        summary=_get(ps, "descriptionModule.briefSummary"),
        eligibility=_eligibility(ps),
        criteria=criteria,
        arms=_items(arms, "label"),
        interventions=_items(_get(ps, "armsInterventionsModule.interventions") or [], "name"),
        outcomes=[
            (_text(o.get("measure", "")), o.get("timeFrame")) for o in _get(ps, "outcomesModule.primaryOutcomes") or []
        ],
        sites=_sites(ps),
        recent=recent_changes(
            data.changes, since=now - timedelta(days=days), bookkeeping=config.settings.include_bookkeeping
        ),
        days=days,
        versions=list(reversed(data.infos)),
        chart=render_chart(points),
        tags=tags,
        study_url=study_url(nct_id),
        history_url=history_url(nct_id),
    )


def rules_of(config: Config) -> SeverityRules:
    return SeverityRules.from_mapping(config.settings.severity_rules)
