"""Which studies a channel hears of in whole-registry mode: conditions, sponsors, phases, statuses.

Watching all of ClinicalTrials.gov (`registry: {all: true}`) must not notify anyone of every one of
its ~560,000 studies: a study that is not on the watchlist reaches only the channels whose
`studies:` filter it matches. Pure: a record in, a yes or no out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# the spec's enums (ctg-oas-v2.yaml: Status, Phase), so a typo in a filter is an error, not silence
STATUSES = (
    "ACTIVE_NOT_RECRUITING",
    "COMPLETED",
    "ENROLLING_BY_INVITATION",
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "SUSPENDED",
    "TERMINATED",
    "WITHDRAWN",
    "AVAILABLE",
    "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE",
    "APPROVED_FOR_MARKETING",
    "WITHHELD",
    "UNKNOWN",
)
PHASES = ("NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4")


@dataclass(frozen=True, slots=True)
class StudyFilter:
    """Every criterion given must hold; within one, any value will do. Conditions and sponsors are
    case-insensitive shell globs (`*breast cancer*`) on the study's conditions and keywords, and on its
    lead sponsor and collaborators; phases and statuses are the API's values (`PHASE3`, `RECRUITING`)."""

    conditions: tuple[str, ...] = ()
    sponsors: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.conditions or self.sponsors or self.phases or self.statuses)


def _module(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    protocol = record.get("protocolSection")
    module = protocol.get(name) if isinstance(protocol, Mapping) else None
    return module if isinstance(module, Mapping) else {}


def _texts(values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _any(patterns: tuple[str, ...], values: list[str]) -> bool:
    lowered = [v.lower() for v in values]
    return any(fnmatchcase(value, pattern.lower()) for pattern in patterns for value in lowered)


def study_matches(rule: StudyFilter, record: Mapping[str, Any]) -> bool:
    """Whether a study record falls under `rule`; an empty rule matches nothing (it would be everything)."""
    if rule.empty:
        return False
    if rule.conditions:
        conditions = _module(record, "conditionsModule")
        if not _any(rule.conditions, _texts(conditions.get("conditions")) + _texts(conditions.get("keywords"))):
            return False
    if rule.sponsors:
        sponsors = _module(record, "sponsorCollaboratorsModule")
        lead = sponsors.get("leadSponsor")
        names = [lead.get("name")] if isinstance(lead, Mapping) else []
        names += [c.get("name") for c in sponsors.get("collaborators") or [] if isinstance(c, Mapping)]
        if not _any(rule.sponsors, [n for n in names if isinstance(n, str)]):
            return False
    if rule.phases and not set(rule.phases) & set(_texts(_module(record, "designModule").get("phases"))):
        return False
    return not rule.statuses or _module(record, "statusModule").get("overallStatus") in rule.statuses
