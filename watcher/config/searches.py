"""The watchlist's `searches:` and `near:` options, validated with file and line.

A search is a saved ClinicalTrials.gov query: its `query:` and `filter:` keys are the API's own
`query.*` and `filter.*` parameter names (the spec `ctg-oas-v2.yaml`; tests/discovery/test_discovery.py
compares these lists with it), so a misspelt key is a configuration error here, not a 400 from
the registry in the middle of the night.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watcher.config.keys import Key, described, key_named, keys_of, names, read_key, setting
from watcher.config.kinds import Choice, Flag, ReadByParser, Reading, SeverityLevel
from watcher.config.yamlbounds import short_repr
from watcher.config.yamlcheck import Validator, kind
from watcher.models import Near, Severity

QUERY_PARAMS = ("cond", "term", "locn", "titles", "intr", "outc", "spons", "lead", "id", "patient")
"""`query.*` of GET /studies (Essie expressions; they rank as well as select)."""
FILTER_PARAMS = ("overallStatus", "geo", "ids", "advanced", "synonyms")
"""`filter.*` of GET /studies."""
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
"""The spec's `Status` enum, the values `filter.overallStatus` accepts."""
GEO = re.compile(r"^distance\(-?\d+(\.\d+)?,-?\d+(\.\d+)?,\d+(\.\d+)?(km|mi)?\)$")  # the spec's pattern
SINCE = ("posted", "matching")
"""`since: posted` asks only for studies first posted since the last run; `matching` for studies
updated since then, so an older study that newly matches (a new site, a new status) is found too."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CHANNELS = ReadByParser("list of channel names")

NEAR = described(
    Near,
    Key("latitude of the point, -90 to 90", ReadByParser("number"), "lat"),
    Key("longitude of the point, -180 to 180", ReadByParser("number"), "lon"),
    Key("the distance in km, more than 0", ReadByParser("number > 0"), "km"),
    Key("instead of a point: a city among the trial's own sites (not for searches)", ReadByParser("text"), "place"),
    Key("the channels told of a site nearby", _CHANNELS, "channels", computed="the trial's channels"),
)
NEAR_KEYS = names(NEAR)
NEAR_KIND = ReadByParser("mapping", (".", NEAR))


@dataclass(frozen=True, slots=True)
class Search:
    """One saved search of the watchlist."""

    name: str = field(metadata=setting("letters, digits, . _ -; it tags what the search finds", ReadByParser("name")))
    query: tuple[tuple[str, str], ...] = field(  # (parameter without `query.`, value)
        metadata=setting(
            f"the API's query.* parameters: {', '.join(QUERY_PARAMS)}",
            ReadByParser("mapping of parameter → text or list of texts"),
            computed="none (a search needs query or filter)",
        )
    )
    filter: tuple[tuple[str, str], ...] = field(  # (parameter without `filter.`, value)
        metadata=setting(
            f"the API's filter.* parameters: {', '.join(FILTER_PARAMS)}",
            ReadByParser("mapping of parameter → text or list of texts"),
            computed="none (a search needs query or filter)",
        )
    )
    watch: bool = field(default=False, metadata=setting("watch every study found, not only announce it", Flag()))
    channels: tuple[str, ...] | None = field(
        default=None, metadata=setting("the channels told of what it finds", _CHANNELS, computed="every channel")
    )
    min_severity: Severity | None = field(
        default=None, metadata=setting("for the studies it watches: only changes this severe", SeverityLevel())
    )
    near: Near | None = field(
        default=None, metadata=setting("only studies with a site within `km` of `lat`, `lon`", NEAR_KIND)
    )
    since: str = field(
        default="posted",
        metadata=setting(
            "posted: studies first posted since the last run; matching: also older ones that newly match",
            Choice(SINCE),
        ),
    )
    announce_first: bool = field(
        default=False, metadata=setting("announce what the first run finds (normally a silent baseline)", Flag())
    )
    line: int | None = None

    @property
    def tag(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        return f"search:{self.name}"

    def params(self) -> dict[str, str]:
        """The API parameters of this search (without the date range a cycle adds)."""
        out = {f"query.{k}": v for k, v in self.query}
        out.update({f"filter.{k}": v for k, v in self.filter})
        if self.near is not None and self.near.lat is not None and self.near.lon is not None:
            out.setdefault("filter.geo", f"distance({self.near.lat:g},{self.near.lon:g},{self.near.km:g}km)")
        return out


def parse_near(
    node: Any, validator: Validator, parent: Any, path: str, channel_names: Sequence[str], *, place_allowed: bool = True
) -> Near | None:
    """`near: {lat: 42.36, lon: -71.06, km: 100}` or `near: {place: Boston, km: 50}`."""
    if node is None:
        return None
    line = validator.line_of(parent, "near")
    if not isinstance(node, Mapping):
        validator.add(line, path, f"expected a mapping such as {{lat: 42.36, lon: -71.06, km: 100}}, got {kind(node)}")
        return None
    validator.unknown_keys(node, NEAR_KEYS, path)
    km = validator.number(node, "km", f"{path}.km", 0, minimum=0)
    if "km" not in node or km <= 0:
        validator.add(line, f"{path}.km", "missing: a distance in km greater than 0")
    lat = _coordinate(node, "lat", 90, validator, path)
    lon = _coordinate(node, "lon", 180, validator, path)
    place = validator.string(node, "place", f"{path}.place")
    if place is not None and not place_allowed:
        validator.add(
            validator.line_of(node, "place"),
            f"{path}.place",
            "a search needs lat and lon: a place name is resolved from a trial's own sites",
        )
    if (lat is None) != (lon is None) or (lat is None and not place):
        validator.add(line, path, "give both lat and lon, or a place name (a city among the trial's sites)")
    channels = validator.strings(node, "channels", f"{path}.channels") if node.get("channels") else None
    for name in channels or ():
        if name not in channel_names:
            validator.add(
                validator.line_of(node, "channels"), f"{path}.channels", f"unknown channel {short_repr(name)}"
            )
    return Near(km=km, lat=lat, lon=lon, place=place or None, channels=channels)


def _coordinate(node: Mapping[str, Any], key: str, limit: float, validator: Validator, path: str) -> float | None:
    if node.get(key) is None:
        return None
    value = validator.number(node, key, f"{path}.{key}", 0, minimum=-limit)
    if value > limit:
        validator.add(validator.line_of(node, key), f"{path}.{key}", f"must be between {-limit:g} and {limit:g}")
    return value


def _params(
    node: Any, allowed: Sequence[str], prefix: str, validator: Validator, *, parent: Any, path: str
) -> tuple[tuple[str, str], ...]:
    if node is None:
        return ()
    if not isinstance(node, Mapping):
        validator.add(
            validator.line_of(parent, prefix), path, f"expected a mapping of {prefix}.* parameters, got {kind(node)}"
        )
        return ()
    out: list[tuple[str, str]] = []
    for key, value in node.items():
        line = validator.line_of(node, key)
        if key not in allowed:
            validator.add(
                line,
                f"{path}.{key}",
                f"`{prefix}.{key}` is not a ClinicalTrials.gov API parameter (expected one of: {', '.join(allowed)})",
            )
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
            text = ",".join(value)
        elif isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
            text = str(value)
        else:
            validator.add(line, f"{path}.{key}", f"expected text or a list of texts, got {kind(value)}")
            continue
        if prefix == "filter" and key == "overallStatus":
            bad = [s for s in re.split(r"[,|]", text) if s.strip() not in STATUSES]
            if bad:
                validator.add(
                    line,
                    f"{path}.{key}",
                    f"{', '.join(map(repr, bad))}: not a status (expected: {', '.join(STATUSES)})",
                )
                continue
        if prefix == "filter" and key == "geo" and not GEO.match(text):
            validator.add(
                line, f"{path}.{key}", f"{short_repr(text)} is not distance(lat,lon,50km) (the spec's pattern)"
            )
            continue
        out.append((str(key), text))
    return tuple(out)


SEARCH = keys_of(Search)
SEARCH_KEYS = names(SEARCH)


def parse_searches(doc: Mapping[str, Any], validator: Validator, channel_names: Sequence[str]) -> tuple[Search, ...]:
    items = doc.get("searches")
    if items is None:
        return ()
    if not isinstance(items, list):
        validator.add(validator.line_of(doc, "searches"), "searches", f"expected a list, got {kind(items)}")
        return ()
    searches: list[Search] = []
    seen: dict[str, int | None] = {}
    reading = Reading(validator)
    for index, item in enumerate(items):
        path, line = f"searches[{index}]", validator.line_of(items, index)
        if not isinstance(item, Mapping):
            validator.add(line, path, f"expected a mapping with `name` and `query`, got {kind(item)}")
            continue
        validator.unknown_keys(item, SEARCH_KEYS, path)
        name = _search_name(item, path, line, validator, seen)
        if name is not None:
            searches.append(_search(name, item, path, line, reading=reading, channel_names=channel_names))
    return tuple(searches)


def _search_name(
    item: Mapping[str, Any], path: str, line: int | None, validator: Validator, seen: dict[str, int | None]
) -> str | None:
    """The search's name, or None (a problem noted) when it is missing, malformed or taken; a name
    is a tag, so without one there is nothing to read the rest of the search for."""
    name = validator.string(item, "name", f"{path}.name")
    if not name or not _NAME.match(name):
        validator.add(
            line,
            f"{path}.name",
            f"{short_repr(name)} is not a name (letters, digits, . _ -; it becomes a tag)"
            if name
            else "missing: each search needs a name (it tags what it finds)",
        )
        return None
    if name in seen:
        validator.add(line, f"{path}.name", f"{short_repr(name)} is used twice (first at line {seen[name]})")
        return None
    seen[name] = line
    return name


def _search(
    name: str, item: Mapping[str, Any], path: str, line: int | None, *, reading: Reading, channel_names: Sequence[str]
) -> Search:
    """One named search; every problem of its other keys is noted in `reading.validator`."""
    validator = reading.validator
    query = _params(item.get("query"), QUERY_PARAMS, "query", validator, parent=item, path=f"{path}.query")
    filters = _params(item.get("filter"), FILTER_PARAMS, "filter", validator, parent=item, path=f"{path}.filter")
    if not item.get("query") and not item.get("filter"):
        validator.add(line, path, "a search needs `query:` or `filter:` (else it matches every study)")
    channels = read_channels(item, path, validator.line_of(item, "channels"), validator, channel_names)
    since_key = key_named(SEARCH, "since")
    since = validator.string(item, "since", f"{path}.since") or since_key.default
    if problem := since_key.kind.check(since, since):
        validator.add(validator.line_of(item, "since"), f"{path}.since", problem)
    near = parse_near(item.get("near"), validator, item, f"{path}.near", channel_names, place_allowed=False)
    if near is not None and dict(filters).get("geo"):
        validator.add(validator.line_of(item, "near"), f"{path}.near", "give `near:` or `filter.geo`, not both")
    return Search(
        name=name,
        query=query,
        filter=filters,
        watch=read_key(key_named(SEARCH, "watch"), item, path, reading),
        channels=channels,
        min_severity=read_key(key_named(SEARCH, "min_severity"), item, path, reading),
        near=near,
        since=since,
        announce_first=read_key(key_named(SEARCH, "announce_first"), item, path, reading),
        line=line,
    )


def read_channels(
    node: Mapping[str, Any], path: str, line: int | None, validator: Validator, channel_names: Sequence[str]
) -> tuple[str, ...] | None:
    """`channels:` of a trial or a search: names of configured channels, None (every channel) when absent."""
    channels = validator.strings(node, "channels", f"{path}.channels") if node.get("channels") else None
    known = ", ".join(channel_names) or "none are configured"
    for name in channels or ():
        if name not in channel_names:
            validator.add(line, f"{path}.channels", f"unknown channel {short_repr(name)} (known: {known})")
    return channels


TAG_OPTIONS = (Key("what every trial of the tag without a `near` of its own takes", NEAR_KIND, "near"),)


def parse_tag_options(doc: Mapping[str, Any], validator: Validator, channel_names: Sequence[str]) -> dict[str, Near]:
    """`tags: {oncology: {near: {...}}}`: options every trial with that tag inherits."""
    node = validator.mapping(doc, "tags", "tags")
    out: dict[str, Near] = {}
    for tag, options in (node or {}).items():
        path = f"tags.{tag}"
        if not isinstance(options, Mapping):
            validator.add(validator.line_of(node, tag), path, f"expected a mapping with `near:`, got {kind(options)}")
            continue
        validator.unknown_keys(options, names(TAG_OPTIONS), path)
        near = parse_near(options.get("near"), validator, options, f"{path}.near", channel_names)
        if near is not None:
            out[str(tag)] = near
    return out
