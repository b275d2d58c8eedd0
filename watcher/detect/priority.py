"""Clinical priority: which change leads a message.

Severity says how loud a change is; priority says which change a patient, a site coordinator
or an investor reads first. The headline (a message's title and first line) is the change of
highest priority, and every human format lists changes in this order (severity breaks ties).
A reworded time frame or description is never the headline while a status transition,
results, an enrollment drop, a completion-date slip, an eligibility change or a site opening
sits in the same version.

`PRIORITY` is the ranking as data, most important first; docs/explanation/fields.md, "Severity and events", prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from watcher.detect.filters import matches
from watcher.models import SEVERITY_RANK

Condition = Literal["", "drop", "later", "opening"]

PRIORITY: tuple[tuple[str, Condition, str], ...] = (
    (
        "field:status.overallStatus",
        "",
        "overall status changed (recruiting opened or closed, suspended, terminated, withdrawn — with the reason)",
    ),
    ("field:results.hasResults", "", "results posted or withdrawn"),
    ("event:results_item_posted", "", "results of an outcome measure, the participant flow or adverse events posted"),
    ("event:enrollment_change", "drop", "enrollment dropped"),
    ("event:date_slip", "later", "a start or completion date slipped later"),
    ("field:eligibility.*", "", "eligibility changed (criteria, ages, sex, healthy volunteers)"),
    ("event:site_status", "opening", "a site opened (now RECRUITING)"),
    ("event:site_added", "opening", "a site added that is recruiting or about to"),
    ("event:sponsor_change", "", "lead sponsor or collaborators changed"),
    ("event:phase_change", "", "phase changed"),
    ("event:primary_outcome_added", "", "a primary outcome added"),
    ("event:primary_outcome_removed", "", "a primary outcome removed"),
    ("event:date_actual", "", "a date became actual"),
    ("event:results_updated", "", "posted results changed"),
    ("field:results.*", "", "other changes to posted results"),
    ("event:results_submission", "", "results submitted, returned for corrections or withdrawn before posting"),
    ("event:enrollment_change", "", "enrollment rose or its type changed"),
    ("event:date_slip", "", "a date moved earlier"),
    ("event:site_status", "", "a site's recruitment status changed otherwise"),
    ("event:site_removed", "", "a site removed"),
    ("event:site_added", "", "a site added (no status)"),
    ("field:status.whyStopped", "", "the reason for stopping reworded"),
    ("field:design.*", "", "other design changes"),
    ("field:armsInterventions.*", "", "arms and interventions"),
    ("event:primary_outcome_reworded", "", "a primary outcome reworded (measure, time frame, description)"),
    ("field:outcomes.*", "", "other outcomes"),
    ("field:identification.*", "", "titles and identifiers"),
    ("field:description.*", "", "summaries and descriptions"),
)
"""(`event:<kind>` or `field:<glob>`, condition, what it means), most important first.
Conditions: `drop` enrollment fell; `later` a date moved later; `opening` a site is (now)
RECRUITING or NOT_YET_RECRUITING. A change that matches no row ranks after every row."""

_OPENING = frozenset({"RECRUITING", "NOT_YET_RECRUITING"})


def _holds(condition: Condition, event: Mapping[str, Any]) -> bool:
    found = event.get("data")
    data: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if condition == "drop":
        return isinstance(data.get("delta"), int | float) and data["delta"] < 0
    if condition == "later":
        return isinstance(data.get("days"), int) and data["days"] > 0
    if condition == "opening":
        status = data.get("to") if event.get("kind") == "site_status" else data.get("status")
        return status in _OPENING
    return True


def priority(change: Mapping[str, Any]) -> int:
    """The row of `PRIORITY` a change (in its stored, dict form) falls under; lower comes first."""
    event = change.get("event") if isinstance(change.get("event"), Mapping) else None
    field = str(change.get("field") or "")
    for rank, (target, condition, _) in enumerate(PRIORITY):
        kind, _, name = target.partition(":")
        if kind == "event":
            if event is not None and event.get("kind") == name and _holds(condition, event):
                return rank
        elif matches(field, (name,)):
            return rank
    return len(PRIORITY)


def order_key(change: Mapping[str, Any]) -> tuple[int, int]:
    """Sort key: clinical priority first, then severity (most severe first)."""
    return priority(change), -SEVERITY_RANK.get(str(change.get("severity")), 0)
