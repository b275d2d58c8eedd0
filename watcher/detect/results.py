"""Posted results in words: what a reader wants to know when results appear or change.

The results section is stored and compared as one digest per module (cheap, exact), but a digest
tells a person nothing. When a version's results differ, this module names the change the way a
reader thinks of it — an outcome measure with its values, participant-flow totals, adverse-event
totals, the stated limitations — under catalog-style names (`results.outcomes.primary.<measure>`).

Lists in results tables are matched by identity (measures by type and title, groups by their ID,
milestones by type, categories by title), so reordering is never a change; `deepdiff` then finds
which of the matched values moved. A change whose one-line summary reads the same on both sides
(a reworded group description, a corrected lower limit beyond what the summary shows) is reported
at the level of the values that changed instead, so old and new never read the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from watcher.models import Change, ChangeKind, Event, Json, Severity

MAX_DETAILS = 5
"""Value-level changes listed for one item whose summary did not change; the rest are counted."""

_DISPERSION = {
    "Full Range": "range",
    "Standard Deviation": "SD",
    "Standard Error": "SE",
    "95% Confidence Interval": "95% CI",
    "Inter-Quartile Range": "IQR",
}


@dataclass(frozen=True, slots=True)
class _Item:
    """One reportable part of the results: its sentence and the identity-keyed data behind it."""

    text: str
    data: Json
    severity: Severity


def _by(items: Any, key: str) -> dict[str, Any]:
    """A list of dicts keyed by `key` (repeats get a #n suffix): identity instead of position."""
    out: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        name = str(item.get(key) or "").strip() or "?"
        base, n = name, 2
        while name in out:
            name, n = f"{base}#{n}", n + 1
        out[name] = item
    return out


def _groups(node: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(g.get("id")): str(g.get("title") or g.get("id")) for g in node.get("groups") or [] if isinstance(g, Mapping)
    }


def _measure_data(measure: Mapping[str, Any]) -> Json:
    """The measure with its lists keyed by identity, for deepdiff."""
    return {
        **{k: v for k, v in measure.items() if k not in {"groups", "denoms", "classes", "analyses"}},
        "groups": {k: dict(v) for k, v in _by(measure.get("groups"), "id").items()},
        "denoms": {
            d_units: {c.get("groupId"): c.get("value") for c in d.get("counts") or []}
            for d_units, d in _by(measure.get("denoms"), "units").items()
        },
        "classes": {
            title: {
                cat: {
                    m.get("groupId"): {k: v for k, v in m.items() if k != "groupId"}
                    for m in c.get("measurements") or []
                }
                for cat, c in _by(cls.get("categories"), "title").items()
            }
            for title, cls in _by(measure.get("classes"), "title").items()
        },
        "analyses": [
            {
                k: v
                for k, v in a.items()
                if k in {"pValue", "statisticalMethod", "paramType", "paramValue", "ciLowerLimit", "ciUpperLimit"}
            }
            for a in measure.get("analyses") or []
            if isinstance(a, Mapping)
        ],
    }


def _measure_text(measure: Mapping[str, Any]) -> str:
    if measure.get("reportingStatus") == "NOT_POSTED":
        return "results not posted yet"
    groups = _groups(measure)
    denoms = {
        c.get("groupId"): c.get("value") for d in (measure.get("denoms") or [])[:1] for c in d.get("counts") or []
    }
    classes = measure.get("classes") or []
    categories = (classes[0].get("categories") or []) if classes else []
    values: list[str] = []
    for m in (categories[0].get("measurements") or []) if categories else []:
        text = f"{groups.get(m.get('groupId'), m.get('groupId'))} {m.get('value', '?')}"
        spread = _DISPERSION.get(str(measure.get("dispersionType")), "")
        if m.get("lowerLimit") is not None and m.get("upperLimit") is not None:
            text += f" ({spread + ' ' if spread else ''}{m['lowerLimit']}–{m['upperLimit']})"
        elif m.get("spread") is not None:
            text += f" ({spread + ' ' if spread else ''}±{m['spread']})"
        if denoms.get(m.get("groupId")):
            text += f", n={denoms[m.get('groupId')]}"
        values.append(text)
    how = ", ".join(
        str(x)
        for x in (str(measure.get("paramType") or "").replace("_", " ").lower(), measure.get("unitOfMeasure"))
        if x
    )
    out = f"{how}: " if how else ""
    out += "; ".join(values) if values else "no values"
    more = sum(len(c.get("categories") or []) for c in classes) - 1
    if more > 0:
        out += f" (+{more} more categor{'ies' if more > 1 else 'y'})"
    p_values = [str(a["pValue"]) for a in measure.get("analyses") or [] if isinstance(a, Mapping) and a.get("pValue")]
    if p_values:
        out += f"; p={p_values[0]}"
    if measure.get("timeFrame"):
        out += f" — at {measure['timeFrame']}"
    return out


def _outcomes(module: Mapping[str, Any]) -> Iterator[tuple[str, _Item]]:
    for measure in module.get("outcomeMeasures") or []:
        if not isinstance(measure, Mapping):
            continue
        kind = str(measure.get("type") or "other").lower()
        name = f"results.outcomes.{kind}.{str(measure.get('title') or '?').strip()}"
        yield name, _Item(_measure_text(measure), _measure_data(measure), "major" if kind == "primary" else "minor")


def _flow(module: Mapping[str, Any]) -> Iterator[tuple[str, _Item]]:
    groups = _groups(module)
    for title, period in _by(module.get("periods"), "title").items():
        data = {
            kind: {a.get("groupId"): a.get("numSubjects") for a in m.get("achievements") or []}
            for kind, m in _by(period.get("milestones"), "type").items()
        }
        parts = []
        for kind, counts in data.items():
            total = sum(int(v) for v in counts.values() if str(v).isdigit())
            each = ", ".join(f"{groups.get(g, g)} {v}" for g, v in counts.items())
            parts.append(f"{kind.replace('_', ' ').lower()} {total} ({each})")
        suffix = "" if title in {"Overall Study", "?"} else f".{title}"
        yield f"results.participantFlow.totals{suffix}", _Item("; ".join(parts) or "no milestones", data, "minor")


def _adverse(module: Mapping[str, Any]) -> Iterator[tuple[str, _Item]]:
    groups = {str(g.get("id")): g for g in module.get("eventGroups") or [] if isinstance(g, Mapping)}
    kinds: tuple[tuple[str, Severity], ...] = (("serious", "major"), ("other", "minor"), ("deaths", "major"))
    for kind, severity in kinds:
        counts = {
            gid: (g.get(f"{kind}NumAffected"), g.get(f"{kind}NumAtRisk"))
            for gid, g in groups.items()
            if g.get(f"{kind}NumAffected") is not None
        }
        if not counts:
            continue
        affected = sum(int(a or 0) for a, _ in counts.values())
        at_risk = sum(int(r or 0) for _, r in counts.values())
        each = ", ".join(f"{groups[g].get('title') or g} {a}/{r}" for g, (a, r) in counts.items())
        who = "died" if kind == "deaths" else f"had {kind} adverse events"
        text = f"{affected} of {at_risk} participants {who} ({each})"
        yield f"results.adverseEvents.{kind}", _Item(text, {g: list(v) for g, v in counts.items()}, severity)


def _baseline(module: Mapping[str, Any]) -> Iterator[tuple[str, _Item]]:
    groups = _groups(module)
    denoms = module.get("denoms") or []
    if denoms and isinstance(denoms[0], Mapping):
        counts = {c.get("groupId"): c.get("value") for c in denoms[0].get("counts") or []}
        each = ", ".join(f"{groups.get(g, g)} {v}" for g, v in counts.items())
        yield "results.baseline.participants", _Item(f"{each} {denoms[0].get('units') or ''}".strip(), counts, "minor")


def _more_info(module: Mapping[str, Any]) -> Iterator[tuple[str, _Item]]:
    limits = (module.get("limitationsAndCaveats") or {}).get("description")
    if limits:
        yield "results.moreInfo.limitations", _Item(str(limits), str(limits), "minor")
    agreement = module.get("certainAgreement")
    if isinstance(agreement, Mapping):
        said = ["the PI is " + ("" if agreement.get("piSponsorEmployee") else "not ") + "a sponsor employee"]
        restrictive = agreement.get("restrictiveAgreement")
        if restrictive is not None:
            said.append("restrictive agreement" if restrictive else "no restrictive agreement")
        if agreement.get("restrictionType"):
            said.append(str(agreement["restrictionType"]).replace("_", " ").lower())
        yield "results.moreInfo.agreement", _Item("; ".join(said), _json(agreement), "minor")
    contact = module.get("pointOfContact")
    if isinstance(contact, Mapping):
        who = ", ".join(str(contact[k]) for k in ("title", "organization") if contact.get(k)) or "named"
        yield "results.moreInfo.contact", _Item(who, _json(contact), "minor")


_SECTIONS = (
    ("outcomeMeasuresModule", _outcomes),
    ("participantFlowModule", _flow),
    ("adverseEventsModule", _adverse),
    ("baselineCharacteristicsModule", _baseline),
    ("moreInfoModule", _more_info),
)

COVERED = {
    "results.outcomeMeasures": "results.outcomes.",
    "results.participantFlow": "results.participantFlow.",
    "results.adverseEvents": "results.adverseEvents.",
    "results.baselineCharacteristics": "results.baseline.",
    "results.moreInfo": "results.moreInfo.",
}
"""Each module digest field → the prefix of the worded changes that replace it when there are any."""


def results_items(section: Mapping[str, Any] | None) -> dict[str, _Item]:
    """The reportable parts of a results section, by name, in reading order."""
    out: dict[str, _Item] = {}
    for module, read in _SECTIONS:
        node = (section or {}).get(module)
        if isinstance(node, Mapping):
            out.update(read(node))
    return out


_LABELS = {
    "participantFlow": "Participant flow",
    "adverseEvents.serious": "Serious adverse events",
    "adverseEvents.other": "Other adverse events",
    "adverseEvents.deaths": "Deaths",
    "baseline.participants": "Baseline participants",
    "moreInfo.limitations": "Limitations",
    "moreInfo.agreement": "PI/sponsor agreement",
    "moreInfo.contact": "Results point of contact",
}


def _label(name: str) -> str:
    """`results.outcomes.primary.BMI` → "Primary outcome BMI": the words of an event summary."""
    part = name.removeprefix("results.")
    if part.startswith("outcomes."):
        _, kind, title = part.split(".", 2)
        return f"{kind.capitalize()} outcome {title}"
    return next((label for key, label in _LABELS.items() if part.startswith(key)), part)


def _detail_name(name: str, path: list[Any]) -> str:
    return ".".join([name, *(str(p) for p in path)])


def _details(name: str, old: Json, new: Json, *, ignore_order: bool = False) -> list[Change]:
    """Value-level changes of an item whose summary reads the same before and after (or of a
    module part no summary covers); with `ignore_order`, lists that only moved are no change."""
    from deepdiff import DeepDiff  # here, not at the top: importing it costs every command ~0.1 s

    diff = DeepDiff(old, new, verbose_level=2, ignore_order=ignore_order)
    found: list[Change] = []
    for kind, levels in diff.tree.items():
        for level in levels:
            field = _detail_name(name, level.path(output_format="list"))
            before = None if "added" in kind else level.t1
            after = None if "removed" in kind else level.t2
            change: ChangeKind = "added" if "added" in kind else "removed" if "removed" in kind else "changed"
            found.append(Change(field, change, _json(before), _json(after), "minor"))
    found.sort(key=lambda c: c.field)
    if len(found) > MAX_DETAILS:
        rest = len(found) - MAX_DETAILS + 1
        found = [
            *found[: MAX_DETAILS - 1],
            Change(f"{name}.(more)", "changed", None, f"{rest} more values changed", "minor"),
        ]
    return found


def _json(value: Any) -> Json:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return str(value)


def results_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[Change]:
    """The results changes from one version's `resultsSection` to the next's, in words.

    A module whose only difference is order is no change. What the worded items do not cover (a
    module's other keys) is still reported, by the values that changed, never as a digest.
    """
    before, after = results_items(old), results_items(new)
    changes: list[Change] = []
    for name in [*after, *(n for n in before if n not in after)]:
        o, n = before.get(name), after.get(name)
        if o is None and n is not None:
            event = Event("results_item_posted", f"{_label(name)}: results posted", {"item": name})
            changes.append(Change(name, "added", None, n.text, n.severity, event))
        elif n is None and o is not None:
            changes.append(Change(name, "removed", o.text, None, o.severity))
        elif o is not None and n is not None and o.data != n.data:
            if o.text != n.text:
                event = Event("results_updated", f"{_label(name)}: posted results changed", {"item": name})
                changes.append(Change(name, "changed", o.text, n.text, n.severity, event))
            else:
                changes += _details(name, o.data, n.data)
    for field, prefix in COVERED.items():
        if any(c.field.startswith(prefix) for c in changes):
            continue
        module = field.removeprefix("results.") + "Module"
        old_module, new_module = (old or {}).get(module), (new or {}).get(module)
        if old_module != new_module:
            changes += _details(field, _json(old_module), _json(new_module), ignore_order=True)
    return changes
