"""The trial page of `trialwatch show`.

The page follows the product's model mirror page: title, official title, NCT
link, Key Facts, Brief Summary, Eligibility (criteria verbatim in a code block), Arms,
Interventions, Primary Outcomes, Locations, then the recent field changes. Parts the
record lacks are left out rather than shown empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from watcher.detect.describe import change_texts, change_values, event_sentence
from watcher.detect.priority import order_key
from watcher.detect.record import last_update_of, overall_status_of, title_of
from watcher.models import Change, change_to_dict, study_url

_SPACE = re.compile(r"\s+")


# ---------------------------------------------------------------------------------------
# The trial page
# ---------------------------------------------------------------------------------------


def _get(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _line(text: Any) -> str:
    return _SPACE.sub(" ", str(text)).strip()


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=0)
    return "`" * max(3, longest + 1)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The first stored version of a trial: when it was recorded and how many fields it had."""

    recorded: date | datetime
    fields: int


def render_trial_page(
    study: Mapping[str, Any],
    changes: Sequence[tuple[date | datetime, Change]],
    *,
    days: int,
    today: date,
    baseline: Baseline | None = None,
    front_matter: bool = False,
    last_seen: datetime | None = None,
) -> str:
    """The markdown page of one trial, ending with its field changes of the last `days` days.

    `changes` pairs each change with when it was detected; changes within the window are
    listed newest first (clinical priority within one detection), each with old → new. The
    baseline, when in the window, is one line at the end: "First recorded on … with N fields".
    `front_matter` starts the page with the seed's YAML front matter (`last_seen` its
    `last_seen_at`), so a mirror site can publish the page as it is.
    """
    ps = study.get("protocolSection") or {}
    nct_id = _get(ps, "identificationModule.nctId") or ""
    url = study_url(nct_id)
    title = _line(title_of(study) or nct_id)
    out: list[str] = _front_matter(study, ps, last_seen) if front_matter else []
    out += [f"# {title}", ""]
    official = _get(ps, "identificationModule.officialTitle")
    if official:
        out += [f"**Official Title:** {_line(official)}", ""]
    out += [f"**NCT ID:** [{nct_id}]({url})", ""]
    out += _key_facts(study, ps)
    summary = _get(ps, "descriptionModule.briefSummary")
    if summary:
        out += ["## Brief Summary", "", str(summary).strip(), ""]
    out += _eligibility(ps)
    out += _arms(ps)
    out += _interventions(ps)
    out += _outcomes(ps)
    out += _locations(ps)
    out += _recent(changes, days=days, today=today, baseline=baseline)
    out += ["---", "", f"*Source data (authoritative): {url}*", ""]
    return "\n".join(out)


def _key_facts(study: Mapping[str, Any], ps: Mapping[str, Any]) -> list[str]:
    enrollment = _get(ps, "designModule.enrollmentInfo") or {}
    enrollment_label = "Actual Enrollment" if enrollment.get("type") == "ACTUAL" else "Target Enrollment"
    collaborators = [c.get("name") for c in _get(ps, "sponsorCollaboratorsModule.collaborators") or []]
    facts = (
        ("Status", overall_status_of(study)),
        ("Phase", ", ".join(_get(ps, "designModule.phases") or [])),
        ("Study Type", _get(ps, "designModule.studyType")),
        (enrollment_label, enrollment.get("count")),
        ("Lead Sponsor", _get(ps, "sponsorCollaboratorsModule.leadSponsor.name")),
        ("Collaborators", ", ".join(str(c) for c in collaborators if c)),
        ("Conditions", ", ".join(_get(ps, "conditionsModule.conditions") or [])),
        ("Start Date", _get(ps, "statusModule.startDateStruct.date")),
        ("Completion Date", _get(ps, "statusModule.completionDateStruct.date")),
        ("CT.gov Last Update", last_update_of(study)),
    )
    lines = [f"- **{label}:** {_line(value)}" for label, value in facts if value not in (None, "")]
    return ["## Key Facts", "", *lines, ""]


def _eligibility(ps: Mapping[str, Any]) -> list[str]:
    el = ps.get("eligibilityModule") or {}
    if not el:
        return []
    facts = (
        ("Minimum age", el.get("minimumAge")),
        ("Maximum age", el.get("maximumAge")),
        ("Sex", el.get("sex")),
        (
            "Healthy Volunteers",
            None if el.get("healthyVolunteers") is None else ("Yes" if el["healthyVolunteers"] else "No"),
        ),
    )
    out = ["## Eligibility", ""]
    out += [f"- **{label}:** {_line(value)}" for label, value in facts if value not in (None, "")]
    out.append("")
    criteria = str(el.get("eligibilityCriteria") or "").strip()
    if criteria:
        fence = _fence(criteria)
        out += [fence, criteria, fence, ""]
    return out


def _named_items(title: str, items: Sequence[Mapping[str, Any]], name_key: str) -> list[str]:
    """`- **name** (TYPE) — description` per item, as the seed lists arms and interventions."""
    if not items:
        return []
    lines = []
    for item in items:
        line = f"- **{_line(item.get(name_key, ''))}**"
        if item.get("type"):
            line += f" ({item['type']})"
        if item.get("description"):
            line += f" — {_line(item['description'])}"
        lines.append(line)
    return [f"## {title}", "", *lines, ""]


def _arms(ps: Mapping[str, Any]) -> list[str]:
    return _named_items("Arms", _get(ps, "armsInterventionsModule.armGroups") or [], "label")


def _interventions(ps: Mapping[str, Any]) -> list[str]:
    return _named_items("Interventions", _get(ps, "armsInterventionsModule.interventions") or [], "name")


def _outcomes(ps: Mapping[str, Any]) -> list[str]:
    outcomes = _get(ps, "outcomesModule.primaryOutcomes") or []
    if not outcomes:
        return []
    lines = []
    for item in outcomes:
        line = f"- **{_line(item.get('measure', ''))}**"
        if item.get("timeFrame"):
            line += f" _(time frame: {_line(item['timeFrame'])})_"
        lines.append(line)
    return ["## Primary Outcomes", "", *lines, ""]


def _locations(ps: Mapping[str, Any]) -> list[str]:
    sites = _get(ps, "contactsLocationsModule.locations") or []
    if not sites:
        return []
    lines = []
    for site in sites:
        where = ", ".join(_line(site[k]) for k in ("facility", "city", "state", "country") if site.get(k))
        lines.append(f"- {where} — _{site['status']}_" if site.get("status") else f"- {where}")
    return [f"## Locations ({len(sites)})", "", *lines, ""]


def _day(when: date | datetime) -> date:
    return when.date() if isinstance(when, datetime) else when


def _recent(
    changes: Sequence[tuple[date | datetime, Change]], *, days: int, today: date, baseline: Baseline | None
) -> list[str]:
    since = today - timedelta(days=days)
    window = [(when, change) for when, change in changes if since <= _day(when) <= today]
    window.sort(key=lambda item: order_key(change_to_dict(item[1])))
    window.sort(key=lambda item: item[0], reverse=True)
    lines = [_change_item(_day(when), change) for when, change in window]
    if baseline is not None and since <= _day(baseline.recorded) <= today:
        lines.append(f"- First recorded on {_day(baseline.recorded).isoformat()} with {baseline.fields} fields")
    return [f"## Recent Field Changes (last {days} days)", "", *(lines or ["_No field changes._"]), ""]


def _change_item(day: date, change: Change) -> str:
    """`- `field` — changed: old → new _(day)_`; an addition or removal shows its one value."""
    data = change_to_dict(change)
    if change.change == "changed" or event_sentence(data):
        values = change_values(data)
    else:
        values = change_texts(data)[0 if change.change == "removed" else 1]
    return f"- `{change.field}` — {change.change}: {values} _({day.isoformat()})_"


def _yaml(value: Any) -> str:
    """A YAML scalar: plain when that reads back as the same string, else double-quoted (JSON)."""
    text = _line(value)
    plain = re.fullmatch(r"[A-Za-z0-9(][^:#\n\"']*", text) and not re.fullmatch(
        r"[-+.\d]+|true|false|null|yes|no", text, re.IGNORECASE
    )
    return text if plain else json.dumps(text, ensure_ascii=False)


def _front_matter(study: Mapping[str, Any], ps: Mapping[str, Any], last_seen: datetime | None) -> list[str]:
    """The seed's YAML front matter, from the record (no `canonical_url`: that is the mirror's own)."""
    nct_id = _get(ps, "identificationModule.nctId") or ""
    sites = _get(ps, "contactsLocationsModule.locations") or []
    countries = list(dict.fromkeys(str(s["country"]) for s in sites if s.get("country")))
    conditions = _get(ps, "conditionsModule.conditions") or []
    fields = (
        ("title", title_of(study) or nct_id),
        ("nct_id", nct_id),
        ("overall_status", overall_status_of(study)),
        ("phase", ", ".join(_get(ps, "designModule.phases") or [])),
        ("sponsor", _get(ps, "sponsorCollaboratorsModule.leadSponsor.name")),
        ("study_type", _get(ps, "designModule.studyType")),
        ("primary_condition", conditions[0] if conditions else None),
        ("countries", ", ".join(countries)),
    )
    lines = ["---", *(f"{key}: {_yaml(value)}" for key, value in fields if value not in (None, ""))]
    lines.append(f"clinicaltrials_gov: {json.dumps(study_url(nct_id))}")
    if last_update_of(study):
        lines.append(f"ct_last_update_post_date: {last_update_of(study)}")
    if last_seen is not None:
        stamp = last_seen.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines.append(f"last_seen_at: {json.dumps(stamp)}")
    return [*lines, "source: ClinicalTrials.gov (mirrored, no enrichment)", "---"]
