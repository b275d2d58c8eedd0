"""The hand-written expectations of `expected_messages.yaml`: what a person must read for named real
pairs, written from the records themselves (see the file's header), with the pairs they are about."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support import real_pairs


@dataclass(frozen=True, slots=True)
class Expected:
    pair: real_pairs.Pair
    why: str
    one_site: Sequence[tuple[Mapping[str, str], Mapping[str, str]]]
    says: Sequence[str]
    never_says: Sequence[str]
    group: Mapping[str, Sequence[str]]
    minor_only: bool | None


@cache
def _entries() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = YAML(typ="safe").load(Path(__file__).with_name("expected_messages.yaml"))
    return data


def pair_ids() -> list[str]:
    return [entry["pair"] for entry in _entries()]


def expected(pair_id: str) -> Expected:
    entry = next(e for e in _entries() if e["pair"] == pair_id)
    pair = next(p for p in real_pairs.pairs() if p.id == pair_id)
    return Expected(
        pair=pair,
        why=entry["why"],
        one_site=[(old, new) for old, new in entry.get("one_site", ())],
        says=entry.get("says", ()),
        never_says=entry.get("never_says", ()),
        group=entry.get("group", {}),
        minor_only=entry.get("minor_only"),
    )


def is_site(value: Any, site: Mapping[str, str]) -> bool:
    """Whether a whole site record is the one described (facility and city as the record spells them)."""
    return isinstance(value, Mapping) and all(value.get(k) == v for k, v in site.items())


def group_of(summary: str, kind: str) -> str:
    """The part of a bulk summary line about one kind: `5 added: A; B` out of `Sites: 5 added: A; B · …`."""
    for part in summary.split(" · "):
        count_kind = part.split(": ", 1)[-1] if part.startswith("Sites: ") else part
        head, _, names = count_kind.partition(": ")
        if head.partition(" ")[2] == kind:
            return names
    return ""
