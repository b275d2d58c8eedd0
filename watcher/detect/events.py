"""The event rules: what a field's change means in words and data, and the severity the rule gives.

Each rule reads one structural change with the old and new *extracted* fields, so that a status
transition can carry the `whyStopped` text, an enrollment change its type, a site its address. The first
rule whose field predicate holds decides (`decide`); a field no rule covers has no event, and its
severity comes from the field table in `watcher.detect.meaning`, where the user's overrides also win
over a rule's severity.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from datetime import date

from watcher.detect.catalog import field_kind
from watcher.models import Change, Event, Json, Severity

STOPPED_STATUSES = frozenset(
    {"SUSPENDED", "TERMINATED", "WITHDRAWN", "WITHHELD", "NO_LONGER_AVAILABLE", "TEMPORARILY_NOT_AVAILABLE"}
)
"""Statuses that stop (or resume, when left) a trial for the people in it."""

SLIP_MAJOR_DAYS = 30
"""A date that moves by at least this many days is a major change."""

ENROLLMENT_MAJOR_PERCENT = 20.0
"""An enrollment change of at least this percentage is a major change."""

REWORD_SIMILARITY = 0.6
"""A removed and an added primary outcome this similar (difflib ratio) are one rewording."""

_DATE_FIELDS = {
    "status.startDate": "Start date",
    "status.primaryCompletionDate": "Primary completion date",
    "status.completionDate": "Completion date",
}

Decision = tuple[Event | None, Severity | None]


def decide(change: Change, old: Mapping[str, Json], new: Mapping[str, Json], reworded: Mapping[str, Event]) -> Decision:
    """The event of a change between two versions and the severity its rule gives (None: the field tables
    decide); `reworded` is what `reworded_outcomes` found among all the changes of the pair."""
    for applies, rule in _RULES:
        if applies(change.field):
            return rule(change, old, new, reworded)
    return None, None


def _phase(change: Change) -> Decision:
    phases_from, phases_to = _phases(change.old), _phases(change.new)
    summary = f"Phase changed from {phases_from or 'none'} to {phases_to or 'none'}"
    return Event("phase_change", summary, {"from": change.old, "to": change.new}), "major"


def _results_module(change: Change) -> Decision:
    if change.change != "changed":
        return None, None
    module = change.field.removeprefix("results.")
    return Event("results_updated", f"Posted results changed ({module})", {"module": module}), "major"


def _status(change: Change, new: Mapping[str, Json]) -> Decision:
    if change.change != "changed":
        return None, None
    why = new.get("status.whyStopped")
    summary = f"Status changed from {change.old} to {change.new}"
    if why:
        summary += f": {why}"
    severity: Severity = "critical" if {change.old, change.new} & STOPPED_STATUSES else "major"
    data = {"from": change.old, "to": change.new, "whyStopped": why}
    return Event("status_transition", summary, data), severity


def parse_partial_date(value: Json) -> date | None:
    """`yyyy`, `yyyy-MM` or `yyyy-MM-dd` → a date (missing parts are the first day/month)."""
    if not isinstance(value, str):
        return None
    parts = value.split("-")
    try:
        numbers = [int(p) for p in parts[:3]]
        return date(numbers[0], *[*numbers[1:], 1, 1][:2])
    except (ValueError, IndexError):
        return None


def _precision(*values: Json) -> str:
    """The coarsest precision of dates given as `yyyy`, `yyyy-MM` or `yyyy-MM-dd`: a month-only date
    says nothing of the day, so a distance to it is only known in months."""
    parts = min((len(v.split("-")) for v in values if isinstance(v, str)), default=3)
    return {1: "year", 2: "month"}.get(parts, "day")


def _distance(days: int, precision: str) -> str:
    """How far a date moved, in words at the data's precision ("12 days", "about 2 months")."""
    days = abs(days)
    if precision == "day":
        return f"{days} day{'s' if days != 1 else ''}"
    months = round(days / 30.44)
    if precision == "year" or months >= 24:
        years = round(days / 365.25)
        return f"about {years} year{'s' if years != 1 else ''}"
    if months == 0:
        return "less than a month"
    return f"about {months} month{'s' if months != 1 else ''}"


def _date_slip(change: Change, new: Mapping[str, Json]) -> Decision:
    before, after = parse_partial_date(change.old), parse_partial_date(change.new)
    if change.change != "changed" or before is None or after is None:
        return None, None
    days = (after - before).days
    label = _DATE_FIELDS[change.field]
    amount = _distance(days, _precision(change.old, change.new))
    if days >= 0:
        summary = f"{label} slipped {amount} later ({change.old} → {change.new})"
    else:
        summary = f"{label} moved {amount} earlier ({change.old} → {change.new})"
    data = {
        "field": change.field,
        "from": change.old,
        "to": change.new,
        "days": days,
        "type": new.get(change.field + "Type"),
    }
    severity: Severity = "major" if abs(days) >= SLIP_MAJOR_DAYS else "minor"
    return Event("date_slip", summary, data), severity


def _date_type(change: Change, new: Mapping[str, Json]) -> Decision:
    if change.change != "changed":
        return None, None
    date_field = change.field.removesuffix("Type")
    label = _DATE_FIELDS[date_field]
    data = {"field": date_field, "from": change.old, "to": change.new, "date": new.get(date_field)}
    if change.old == "ESTIMATED" and change.new == "ACTUAL":
        return Event("date_actual", f"{label} is now actual: {new.get(date_field)}", data), "major"
    return Event("date_type_change", f"{label} is now {change.new}", data), "minor"


def _enrollment(change: Change, old: Mapping[str, Json], new: Mapping[str, Json]) -> Decision:
    if change.change != "changed":
        return None, None
    count_from, count_to = old.get("design.enrollmentCount"), new.get("design.enrollmentCount")
    type_from, type_to = old.get("design.enrollmentType"), new.get("design.enrollmentType")
    data: dict[str, Json] = {
        "from": count_from,
        "to": count_to,
        "type_from": type_from,
        "type": type_to,
        "delta": None,
        "percent": None,
    }
    severity: Severity = "minor"
    if change.field == "design.enrollmentCount":
        if isinstance(count_from, int | float) and isinstance(count_to, int | float):
            data["delta"] = count_to - count_from
            if count_from:
                percent = round((count_to - count_from) / count_from * 100, 1)
                data["percent"] = percent
                if abs(percent) >= ENROLLMENT_MAJOR_PERCENT:
                    severity = "major"
        pct = f" ({data['percent']:+}%)" if data["percent"] is not None else ""
        summary = f"Enrollment changed from {count_from} to {count_to}{pct}, {type_to or 'type unknown'}"
    else:
        summary = f"Enrollment is now {type_to}: {count_to}"
        if type_from == "ESTIMATED" and type_to == "ACTUAL":
            severity = "major"
    return Event("enrollment_change", summary, data), severity


def _results(change: Change, new: Mapping[str, Json]) -> Decision:
    first_posted = new.get("results.firstPostDate")
    if change.new is True:
        summary = "Results posted" + (f" (first posted {first_posted})" if first_posted else "")
        return Event("results_posted", summary, {"firstPostDate": first_posted}), "critical"
    if change.old is True:
        return Event("results_withdrawn", "Results no longer posted", {}), "critical"
    return None, None


def _keys(old: Mapping[str, Json], new: Mapping[str, Json], name: str) -> set[str]:
    """The item keys of a keyed-list field on either side of a change."""
    keys: set[str] = set()
    for fields in (old, new):
        value = fields.get(name)
        if isinstance(value, dict):
            keys.update(value)
    return keys


def _split_field(name: str, prefix: str, is_key: Callable[[str], bool]) -> tuple[str, str] | None:
    """Split `<prefix><key>.<sub>` where the key may itself contain dots: longest key wins."""
    rest = name.removeprefix(prefix)
    if is_key(rest):
        return rest, ""
    end = len(rest)
    while (end := rest.rfind(".", 0, end)) > 0:
        if is_key(rest[:end]):
            return rest[:end], rest[end + 1 :]
    return None


def _site(change: Change, old: Mapping[str, Json], new: Mapping[str, Json]) -> Decision:
    if change.field in old or change.field in new:
        site = change.new if change.change == "added" else change.old
        key = change.field.removeprefix("locations.")
        where = _site_label(site) or key
        data = {"site": key, "status": site.get("status") if isinstance(site, dict) else None, **_place(site)}
        if change.change == "added":
            status = f" ({data['status']})" if data["status"] else ""
            return Event("site_added", f"New site: {where}{status}", data), "major"
        if change.change == "removed":
            return Event("site_removed", f"Site removed: {where}", data), "major"
        return None, None

    def is_site(key: str) -> bool:
        return f"locations.{key}" in new or f"locations.{key}" in old

    split = _split_field(change.field, "locations.", is_site)
    if split is None:
        return None, "minor"
    key, part = split
    site = new.get("locations." + key) or old.get("locations." + key)
    if part != "status":  # a contact, a coordinate, the address: named as the record spells the site
        return Event("site_edited", "", {"site": key, "part": part, **_place(site)}), "minor"
    where = _site_label(site) or key
    summary = f"Site {where}: {change.old or 'no status'} → {change.new or 'no status'}"
    data = {"site": key, "from": change.old, "to": change.new, **_place(site)}
    return Event("site_status", summary, data), "major"


SITE_PLACE = ("facility", "city", "state", "zip", "country")
"""A site's parts that every site event carries as the record spells them: people read these, never
the lowercased key (`facility|city|state|country`), and the zip code tells look-alikes apart."""


def _place(site: Json) -> dict[str, Json]:
    """A site's facility and address as the record spells them."""
    if not isinstance(site, dict):
        return {}
    return {part: site.get(part) for part in SITE_PLACE}


def _site_label(site: Json) -> str:
    if not isinstance(site, dict):
        return ""
    parts = (site.get(part) for part in ("facility", "city", "state", "country"))
    return ", ".join(str(p) for p in parts if p)


def _measure(item: Json) -> str:
    return str(item.get("measure", "")) if isinstance(item, dict) else ""


def reworded_outcomes(changes: Sequence[Change]) -> dict[str, Event]:
    """Pairs of a removed and an added primary outcome that read alike: one rewording."""
    prefix = "outcomes.primary."
    removed = [c for c in changes if c.change == "removed" and c.field.startswith(prefix) and _measure(c.old)]
    added = [c for c in changes if c.change == "added" and c.field.startswith(prefix) and _measure(c.new)]
    pairs: dict[str, Event] = {}
    taken: set[str] = set()
    for gone in removed:
        best, best_ratio = None, REWORD_SIMILARITY
        for came in added:
            if came.field in taken:
                continue
            ratio = difflib.SequenceMatcher(None, _measure(gone.old), _measure(came.new)).ratio()
            if ratio >= best_ratio:
                best, best_ratio = came, ratio
        if best is not None:
            taken.add(best.field)
            data = {"from": _measure(gone.old), "to": _measure(best.new), "part": "measure"}
            event = Event("primary_outcome_reworded", f"Primary outcome reworded: {data['to']}", data)
            pairs[gone.field] = pairs[best.field] = event
    return pairs


def _primary_outcome(
    change: Change, old: Mapping[str, Json], new: Mapping[str, Json], reworded: Mapping[str, Event]
) -> Decision:
    if change.field in reworded:
        return reworded[change.field], "critical"
    if change.field == "outcomes.primary":
        value = change.new if change.change == "added" else change.old
        measures = list(value) if isinstance(value, dict) else []
        if change.change in ("added", "removed"):
            kind = f"primary_outcome_{change.change}"
            return Event(kind, f"Primary outcomes {change.change}", {"measures": measures}), "critical"
        return None, "critical"
    split = _split_field(change.field, "outcomes.primary.", _keys(old, new, "outcomes.primary").__contains__)
    if split is None:
        return None, "critical"
    key, part = split
    if not part and change.change in ("added", "removed"):
        item = change.new if change.change == "added" else change.old
        measure = _measure(item) or key
        kind = f"primary_outcome_{change.change}"
        return Event(kind, f"Primary outcome {change.change}: {measure}", {"measure": measure}), "critical"
    data = {"measure": key, "part": part or "measure", "from": change.old, "to": change.new}
    summary = f"Primary outcome {part or 'wording'} changed: {key}"
    return Event("primary_outcome_reworded", summary, data), "critical"


def _sponsor(change: Change, old: Mapping[str, Json], new: Mapping[str, Json]) -> Decision:
    if change.field == "sponsor.lead":
        summary = f"Lead sponsor changed from {change.old} to {change.new}"
        data = {"role": "lead", "change": change.change, "from": change.old, "to": change.new}
        return Event("sponsor_change", summary, data), "critical"
    split = _split_field(change.field, "sponsor.collaborators.", _keys(old, new, "sponsor.collaborators").__contains__)
    if split is None or split[1]:
        data = {"role": "collaborator", "change": change.change, "from": change.old, "to": change.new}
        return Event("sponsor_change", "Collaborators changed", data), "major"
    data = {"role": "collaborator", "change": change.change, "name": split[0]}
    return Event("sponsor_change", f"Collaborator {change.change}: {split[0]}", data), "major"


Rule = Callable[[Change, Mapping[str, Json], Mapping[str, Json], Mapping[str, Event]], Decision]

_RULES: tuple[tuple[Callable[[str], bool], Rule], ...] = (
    (lambda f: f == "status.overallStatus", lambda c, o, n, r: _status(c, n)),
    (lambda f: f in _DATE_FIELDS, lambda c, o, n, r: _date_slip(c, n)),
    (
        lambda f: f.endswith("Type") and f.removesuffix("Type") in _DATE_FIELDS,
        lambda c, o, n, r: _date_type(c, n),
    ),
    (
        lambda f: f in ("design.enrollmentCount", "design.enrollmentType"),
        lambda c, o, n, r: _enrollment(c, o, n),
    ),
    (lambda f: f == "results.hasResults", lambda c, o, n, r: _results(c, n)),
    (lambda f: f.startswith("results.") and field_kind(f) == "digest", lambda c, o, n, r: _results_module(c)),
    (lambda f: f.startswith("locations."), lambda c, o, n, r: _site(c, o, n)),
    (lambda f: f == "outcomes.primary" or f.startswith("outcomes.primary."), _primary_outcome),
    (
        lambda f: f == "sponsor.lead" or f.startswith("sponsor.collaborators"),
        lambda c, o, n, r: _sponsor(c, o, n),
    ),
    (lambda f: f == "design.phases", lambda c, o, n, r: _phase(c)),
    (lambda f: f.startswith("eligibility.criteria."), lambda c, o, n, r: _criterion(c)),
    (lambda f: f.startswith("annotation.unpostedAnnotation"), lambda c, o, n, r: _unposted(c, n)),
)
"""Field predicate → event rule; the first predicate that holds decides."""


def _criterion(change: Change) -> Decision:
    section, _, number = change.field.removeprefix("eligibility.criteria.").partition(".")
    verb = {"added": "added", "removed": "removed", "changed": "reworded"}[change.change]
    noun = "criterion" if section == "general" else f"{section} criterion"
    data = {
        "section": section,
        "number": int(number) if number.isdigit() else None,
        "change": verb,
        "from": change.old,
        "to": change.new,
    }
    text = change.new if change.change != "removed" else change.old
    summary = f"{noun.capitalize()} {verb}: {text}"
    return Event("eligibility_criterion", summary, data), "major"


def _phases(value: Json) -> str:
    if isinstance(value, list):
        return "/".join(str(v) for v in value)
    return "" if value is None else str(value)


UNPOSTED_EVENTS = {
    "RELEASE": "submitted to ClinicalTrials.gov",
    "UNRELEASE": "withdrawn from review by the sponsor",
    "RESET": "returned for corrections",
}
"""Results-submission events (`annotationSection…unpostedEvents[].type`) in words."""


def _unposted_events(value: Json) -> list[Json]:
    if isinstance(value, dict):
        value = value.get("unpostedEvents")
    return list(value) if isinstance(value, list) else []


def _unposted(change: Change, new: Mapping[str, Json]) -> Decision:
    """Results submitted, returned, withdrawn before posting: one sentence for what is new."""
    before = _unposted_events(change.old)
    fresh = [e for e in _unposted_events(change.new) if e not in before]
    steps = []
    for item in fresh:
        if isinstance(item, dict):
            what = UNPOSTED_EVENTS.get(str(item.get("type")), f"{item.get('type')}")
            steps.append(f"{what} on {item.get('date')}" if item.get("date") else what)
    if not steps:
        return None, None
    summary = "Results " + ", ".join(steps)
    annotation = new.get("annotation.unpostedAnnotation")
    party = annotation.get("unpostedResponsibleParty") if isinstance(annotation, dict) else None
    data = {"events": fresh, "responsibleParty": party}
    return Event("results_submission", summary, data), None
