"""`registry:` (watch every study of ClinicalTrials.gov) and the channels' `studies:` filters.

With `registry.all: true` the cycle pages through the whole registry on its first sync and weekly,
and in between reads only the studies updated since the last complete poll. Studies not on the
watchlist reach only the channels whose `studies:` filter they match (`watcher.detect.studies`), and
never on the registry's first sync, so nobody is notified of 560,000 baselines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from watcher.config.keys import Key, described, names, read_key, setting
from watcher.config.kinds import Flag, Reading, Texts, ValueKind
from watcher.config.yamlbounds import short_repr
from watcher.detect.studies import PHASES, STATUSES, StudyFilter


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """`registry.*`."""

    all: bool = field(
        default=False, metadata=setting("watch every study in ClinicalTrials.gov, not only the watchlist", Flag())
    )


STUDY_FILTER = described(
    StudyFilter,
    Key("globs, any of which one of a study's conditions or keywords must match", Texts(), "conditions"),
    Key("globs, any of which the study's lead sponsor or a collaborator must match", Texts(), "sponsors"),
    Key(f"phases, any of which the study is in: {', '.join(PHASES)}", Texts(), "phases"),
    Key(f"overall statuses, any of which the study has: {', '.join(STATUSES)}", Texts(), "statuses"),
)
STUDY_FILTER_KEYS = names(STUDY_FILTER)


@dataclass(frozen=True, slots=True)
class StudiesFilter(ValueKind[StudyFilter | None]):
    """A channel's `studies:` mapping: known keys, lists of strings, the API's phase and status values."""

    @property
    def label(self) -> str:
        return "mapping"

    def read(
        self, node: Mapping[str, Any], key: str, path: str, default: StudyFilter | None, reading: Reading
    ) -> StudyFilter | None:
        validator = reading.validator
        rule = validator.mapping(node, key, path)
        if rule is None:
            return None
        validator.unknown_keys(rule, STUDY_FILTER_KEYS, path)
        values = {k.field: read_key(k, rule, path, reading) for k in STUDY_FILTER}
        for name, allowed in (("phases", PHASES), ("statuses", STATUSES)):
            known = [v.upper() for v in values[name]]
            for value in known:
                if value not in allowed:
                    validator.add(
                        validator.line_of(rule, name),
                        f"{path}.{name}",
                        f"{short_repr(value)} is not one of {', '.join(allowed)}",
                    )
            values[name] = tuple(v for v in known if v in allowed)
        study_filter = StudyFilter(**values)
        if study_filter.empty:
            validator.add(
                validator.line_of(node, key),
                path,
                f"give at least one of {', '.join(STUDY_FILTER_KEYS)} (an empty filter would match nothing)",
            )
            return None
        return study_filter

    def members(self) -> tuple[str, tuple[Key, ...]]:
        return ".", STUDY_FILTER
