"""What a change means clinically: a severity and, where one applies, a typed event.

`classify` reads the structural changes from `watcher.detect.diff` together with the old and new
*extracted* fields (extract once, reuse) and hands each to the event rules (`watcher.detect.events`).

Severity comes from three layers, the first that applies wins:
1. the user's `severity:` settings (field glob → severity, first matching glob wins);
2. the event's own rule (e.g. a transition to TERMINATED is critical, a 10-day slip minor);
3. the default field table `DEFAULT_SEVERITY` (first matching glob wins; else minor).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from watcher.detect.events import decide, reworded_outcomes
from watcher.detect.filters import matches
from watcher.models import SEVERITIES, Change, Json, Severity

DEFAULT_SEVERITY: tuple[tuple[str, Severity], ...] = (
    ("status.overallStatus", "major"),
    ("status.whyStopped", "major"),
    ("conditions.conditions", "major"),
    ("identification.briefTitle", "major"),
    ("identification.officialTitle", "major"),
    ("results.hasResults", "critical"),
    ("results.*", "major"),
    ("outcomes.primary", "critical"),
    ("outcomes.*", "major"),
    ("sponsor.lead", "critical"),
    ("sponsor.collaborators", "major"),
    ("design.phases", "major"),
    ("design.studyType", "major"),
    ("design.enrollmentCount", "minor"),
    ("eligibility.*", "major"),
    ("armsInterventions.*", "major"),
    ("annotation.violationAnnotation*", "major"),
    ("annotation.*", "minor"),
    ("oversight.fdaaa801Violation", "major"),
    ("status.startDate", "major"),
    ("status.primaryCompletionDate", "major"),
    ("status.completionDate", "major"),
    ("*", "minor"),
)
"""Field globs → severity when no event rule decides; `locations.*` sites are decided by
their events (added, removed, recruiting status: major; other site details: minor)."""


@dataclass(frozen=True, slots=True)
class SeverityRules:
    """Default severities plus the user's overrides (settings key `severity:`).

    `overrides` pairs a field glob with a severity; the first matching glob wins over
    every default, e.g. `{"locations.*": "minor", "design.enrollmentCount": "major"}`.
    """

    overrides: tuple[tuple[str, Severity], ...] = ()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> SeverityRules:
        """Rules from the settings' `severity:` mapping; ValueError names every bad entry."""
        bad = [f"{glob}: {value!r}" for glob, value in mapping.items() if value not in SEVERITIES]
        if bad:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}: {'; '.join(bad)}")
        return cls(tuple((str(glob), value) for glob, value in mapping.items()))

    def override(self, name: str) -> Severity | None:
        for glob, severity in self.overrides:
            if matches(name, (glob,)):
                return severity
        return None


@lru_cache(maxsize=16384)
def default_severity(name: str) -> Severity:
    for glob, severity in DEFAULT_SEVERITY:
        if matches(name, (glob,)):
            return severity
    return "minor"


def classify(
    changes: Sequence[Change],
    old: Mapping[str, Json] | None,
    new: Mapping[str, Json],
    rules: SeverityRules | None = None,
) -> list[Change]:
    """The same changes, in the same order, with `severity` and `event` filled in.

    A baseline (`old=None`) gets field severities but no events: nothing moved yet.
    """
    rules = rules or SeverityRules()
    reworded = reworded_outcomes(changes) if old is not None else {}
    out: list[Change] = []
    for change in changes:
        event, severity = (None, None) if old is None else decide(change, old, new, reworded)
        final = rules.override(change.field) or severity or default_severity(change.field)
        out.append(dataclasses.replace(change, severity=final, event=event))
    return out
