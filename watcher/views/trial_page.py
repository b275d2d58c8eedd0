"""The trial page of `trialwatch show`.

The page follows the seed report (`shared/seeds/000_*.txt`): title, official title, NCT
link, Key Facts, Brief Summary, Eligibility (criteria verbatim in a code block), Arms,
Interventions, Primary Outcomes, Locations, then the recent field changes. Parts the
record lacks are left out rather than shown empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from watcher.detect.record import last_update_of, overall_status_of, title_of
from watcher.models import Change, study_url

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


def render_trial_page(
    study: Mapping[str, Any], changes: Sequence[tuple[date, Change]], *, days: int, today: date
) -> str:
    """The markdown page of one trial, ending with its field changes of the last `days` days.

    `changes` pairs each change with the day it was detected; changes within the window
    are listed newest day first, in their given order within a day.
    """
    ps = study.get("protocolSection") or {}
    nct_id = _get(ps, "identificationModule.nctId") or ""
    url = study_url(nct_id)
    title = _line(title_of(study) or nct_id)
    out: list[str] = [f"# {title}", ""]
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
    out += _recent(changes, days=days, today=today)
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
        ("Healthy Volunteers", None if el.get("healthyVolunteers") is None
         else ("Yes" if el["healthyVolunteers"] else "No")),
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


def _recent(changes: Sequence[tuple[date, Change]], *, days: int, today: date) -> list[str]:
    since = today - timedelta(days=days)
    window = [(day, change) for day, change in changes if since <= day <= today]
    window.sort(key=lambda item: item[0], reverse=True)
    lines = [f"- `{change.field}` — {change.change} _({day.isoformat()})_" for day, change in window]
    return [f"## Recent Field Changes (last {days} days)", "", *(lines or ["_No field changes._"]), ""]
