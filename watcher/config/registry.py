"""`registry:` (watch every study of ClinicalTrials.gov) and the channels' `studies:` filters.

With `registry.all: true` the cycle pages through the whole registry on its first sync and weekly,
and in between reads only the studies updated since the last complete poll. Studies not on the
watchlist reach only the channels whose `studies:` filter they match (`watcher.detect.studies`), and
never on the registry's first sync, so nobody is notified of 560,000 baselines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.config.yamlcheck import Checker
from watcher.detect.studies import PHASES, STATUSES, StudyFilter

STUDY_FILTER_KEYS = ("conditions", "sponsors", "phases", "statuses")


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    all: bool = False  # watch every study in the registry, not only the watchlist


def registry_from(root: Mapping[str, Any], checker: Checker) -> RegistrySettings:
    node = checker.mapping(root, "registry", "registry") or {}
    checker.unknown_keys(node, ("all",), "registry")
    return RegistrySettings(all=checker.boolean(node, "all", "registry.all", False))


def study_filter_from(node: Mapping[str, Any], checker: Checker, path: str) -> StudyFilter | None:
    """A channel's `studies:` mapping, checked: known keys, lists of strings, the API's phase and
    status values; None when absent."""
    rule = checker.mapping(node, "studies", f"{path}.studies")
    if rule is None:
        return None
    where = f"{path}.studies"
    checker.unknown_keys(rule, STUDY_FILTER_KEYS, where)
    values = {key: checker.strings(rule, key, f"{where}.{key}") for key in STUDY_FILTER_KEYS}
    for key, allowed in (("phases", PHASES), ("statuses", STATUSES)):
        known = [v.upper() for v in values[key]]
        for value in known:
            if value not in allowed:
                checker.add(
                    checker.line_of(rule, key), f"{where}.{key}", f"{value!r} is not one of {', '.join(allowed)}"
                )
        values[key] = tuple(v for v in known if v in allowed)
    study_filter = StudyFilter(**values)
    if study_filter.empty:
        checker.add(
            checker.line_of(node, "studies"),
            where,
            f"give at least one of {', '.join(STUDY_FILTER_KEYS)} (an empty filter would match nothing)",
        )
        return None
    return study_filter
