"""Synthetic studies for the fake API: the real records under new NCT IDs, in a size mix, made in
advance (`synthetic_studies`) or only when asked for (`LazyStudies`, a registry of 560,000 in a few MB).

The copies share every subtree with their real record except the identification and status modules;
`FakeCtGov.update` deep-copies before changing one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from tests.support import shared

# Size mixes of synthetic studies: (share in percent, smallest and largest record in bytes on disk).
# `registry` is an assumption, not a measurement (the live service's `/stats/size` gives the real one):
# most registered studies are short records without results (the real ones of 7-14 KB); about one in
# eight has posted results or long eligibility and site lists (26-100 KB); a few are large (150-510 KB).
# The 1.5 MB record with 1,148 sites is left out of these mixes: one in 26 would make it a tenth of the bytes.
MIXES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "fixtures": (),  # the 17 records the tests were written against, in turn (all sizes, 1.5 MB included)
    "small": ((100, 0, 15_000),),
    "registry": ((85, 0, 15_000), (12, 15_000, 100_000), (3, 100_000, 600_000)),
}
FIRST = 90_000_001


def _mix_bases(mix: str) -> list[list[dict[str, Any]]]:
    """Per band of the mix, its real records (from every record in the shared studies directory)."""
    paths = sorted(shared.find(shared.STUDIES).glob("NCT*.json"))
    sized = [(p.stat().st_size, p) for p in paths]
    return [
        [json.loads(p.read_text(encoding="utf-8")) for size, p in sized if low <= size < high]
        for _share, low, high in MIXES[mix]
    ]


def mix_picker(mix: str) -> Callable[[int], dict[str, Any]]:
    """The real record the `i`-th synthetic study of `mix` is made from."""
    if not MIXES[mix]:
        bases = shared.load_studies()
        return lambda i: bases[i % len(bases)]
    bands = _mix_bases(mix)
    table: list[int] = []  # band of each of 100 consecutive studies
    for band, (share, _low, _high) in enumerate(MIXES[mix]):
        table.extend([band] * share)
    return lambda i: bands[table[i % 100]][(i // 100) % len(bands[table[i % 100]])]


def synthetic_study(base: dict[str, Any], nct_id: str) -> dict[str, Any]:
    protocol = base["protocolSection"]
    ident = dict(protocol["identificationModule"], nctId=nct_id)
    ident.pop("nctIdAliases", None)
    study = dict(base)
    study["protocolSection"] = dict(protocol, identificationModule=ident, statusModule=dict(protocol["statusModule"]))
    return study


def synthetic_studies(count: int, *, first: int = FIRST, mix: str = "fixtures") -> Iterator[dict[str, Any]]:
    """`count` studies derived from the real fixtures under new NCT IDs (NCT90000001, ...), in a size
    `mix` (`MIXES`); the same count and mix always give the same studies."""
    pick = mix_picker(mix)
    for i in range(count):
        yield synthetic_study(pick(i), f"NCT{first + i:08d}")


class LazyStudies(MutableMapping[str, dict[str, Any]]):
    """`synthetic_studies(count, mix=mix)` as a mapping NCT ID → study whose studies are made when
    read; only those put, changed or removed since are kept."""

    def __init__(self, count: int, *, mix: str = "registry", first: int = FIRST) -> None:
        self.count, self.first = count, first
        self.pick = mix_picker(mix)
        self.kept: dict[str, dict[str, Any]] = {}
        self.removed: set[str] = set()

    def _index(self, key: str) -> int | None:
        try:
            index = int(key[3:]) - self.first
        except ValueError:
            return None
        return index if 0 <= index < self.count and key == f"NCT{self.first + index:08d}" else None

    def __getitem__(self, key: str) -> dict[str, Any]:
        if key in self.kept:
            return self.kept[key]
        index = self._index(key)
        if index is None or key in self.removed:
            raise KeyError(key)
        return synthetic_study(self.pick(index), key)

    def __setitem__(self, key: str, study: dict[str, Any]) -> None:
        self.kept[key] = study
        self.removed.discard(key)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.kept.pop(key, None)
        if self._index(key) is not None:
            self.removed.add(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return key in self.kept or (self._index(key) is not None and key not in self.removed)

    def __iter__(self) -> Iterator[str]:
        for index in range(self.count):
            key = f"NCT{self.first + index:08d}"
            if key not in self.removed:
                yield key
        yield from (k for k in self.kept if self._index(k) is None)

    def __len__(self) -> int:
        return self.count - len(self.removed) + sum(1 for k in self.kept if self._index(k) is None)
