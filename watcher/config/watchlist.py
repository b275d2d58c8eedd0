"""The watchlist file: which trials are watched, and how, validated whole with file and line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from watcher.config.keys import Key, described, key_named, names, read_key
from watcher.config.kinds import Duration, Nullable, ReadByParser, Reading, SeverityLevel, Texts
from watcher.config.searches import (
    NEAR_KIND,
    SEARCH,
    TAG_OPTIONS,
    Search,
    parse_near,
    parse_searches,
    parse_tag_options,
    read_channels,
)
from watcher.config.settings import Watchlist
from watcher.config.yamlbounds import short_repr
from watcher.config.yamlcheck import Validator, kind, load_yaml_text, read_yaml
from watcher.errors import ConfigError
from watcher.ids import FULL_FORM, is_nct_id, normalize_nct_id
from watcher.models import Trial

TRIAL = described(
    Trial,
    Key(f"the trial's NCT ID ({FULL_FORM}); a list item may be the bare ID", ReadByParser("NCT ID"), "id", "nct_id"),
    Key("shown in titles beside the NCT ID", ReadByParser("text"), "label"),
    Key(
        "the channels told of its changes", ReadByParser("list of channel names"), "channels", computed="every channel"
    ),
    Key("tags: channels and feeds can follow a tag", Texts(), "tags"),
    Key("field globs this trial never notifies", Texts(), "ignore"),
    Key("notify only fields matching these globs", Texts(), "only"),
    Key("notify only changes of this severity or higher", SeverityLevel(), "min_severity"),
    Key("poll this trial at its own interval", Nullable(Duration()), "interval", computed="schedule.interval"),
    Key("a new or newly recruiting site within this distance is its own event", NEAR_KIND, "near"),
)
WATCHLIST = (
    Key("the watched trials", ReadByParser("list of NCT IDs or mappings", ("[].", TRIAL)), "trials", "trials"),
    Key(
        "saved searches: new studies announced once",
        ReadByParser("list of mappings", ("[].", SEARCH)),
        "searches",
        "searches",
    ),
    Key("options the trials of a tag take", ReadByParser("mapping of tag → options", (".<tag>.", TAG_OPTIONS)), "tags"),
)
_TRIAL_KEYS = names(TRIAL)
_TAGS, _IGNORE, _ONLY, _MIN_SEVERITY, _INTERVAL = (
    key_named(TRIAL, name) for name in ("tags", "ignore", "only", "min_severity", "interval")
)
_TOP_KEYS = names(WATCHLIST)


def _trials_from(doc: Any, validator: Validator, channel_names: Sequence[str]) -> tuple[Trial, ...]:
    items = _trial_items(doc, validator)
    trials: list[Trial] = []
    seen: dict[str, int | None] = {}
    reading = Reading(validator)
    bare: Trial | None = None  # a bare ID's trial: every option at its default, read once
    for index, item in enumerate(items):
        path, line = f"trials[{index}]", validator.line_of(items, index)
        nct_id = _trial_id(item, path, line, validator, seen)
        if nct_id is None:
            continue
        if isinstance(item, Mapping):
            trials.append(_trial(nct_id, item, path, line, reading=reading, channel_names=channel_names))
            continue
        if bare is None:
            bare = _trial(nct_id, {}, path, line, reading=reading, channel_names=channel_names)
        trials.append(_bare_copy(bare, nct_id, line))
    return tuple(trials)


def _bare_copy(bare: Trial, nct_id: str, line: int | None) -> Trial:
    """`bare` under another ID and line. `dataclasses.replace` walks the fields and calls `__init__` by
    keyword; positional, this is a plain constructor call: about 0.02 s less for every command that
    reads a watchlist of 10,000 bare IDs (a test keeps the two equal field for field)."""
    return Trial(
        nct_id,
        bare.label,
        bare.channels,
        bare.tags,
        bare.ignore,
        bare.only,
        bare.min_severity,
        bare.interval,
        line,
        bare.near,
        bare.source,
    )


def _trial_items(doc: Any, validator: Validator) -> list[Any]:
    """The `trials:` list of a watchlist document; empty (a problem noted) when the file has another shape."""
    if doc is None:
        return []
    if not isinstance(doc, Mapping):
        validator.add(1, "", f"expected a mapping with a `trials:` list, got {kind(doc)}")
        return []
    validator.unknown_keys(doc, _TOP_KEYS, "")
    items = doc.get("trials")
    if items is None:
        return []
    if not isinstance(items, list):
        validator.add(validator.line_of(doc, "trials"), "trials", f"expected a list, got {kind(items)}")
        return []
    return items


def _trial_id(item: Any, path: str, line: int | None, validator: Validator, seen: dict[str, int | None]) -> str | None:
    """The NCT ID of a list item (a bare ID or a mapping's `id`), normalised; None (a problem noted)
    when it is missing, malformed or listed before: the rest of the item then means nothing."""
    if isinstance(item, str):
        raw_id: Any = item
    elif isinstance(item, Mapping):
        validator.unknown_keys(item, _TRIAL_KEYS, path)
        raw_id = item.get("id")
        if raw_id is None:
            validator.add(line, f"{path}.id", "missing: each trial needs an NCT ID")
            return None
        path = f"{path}.id"
    else:
        validator.add(line, path, f"expected an NCT ID or a mapping with `id`, got {kind(item)}")
        return None
    if isinstance(raw_id, Mapping | list) or not is_nct_id(str(raw_id)):
        validator.add(line, path, f"{short_repr(raw_id)} is not {FULL_FORM}")
        return None
    nct_id = normalize_nct_id(str(raw_id))
    if nct_id in seen:
        validator.add(line, path, f"{nct_id} is listed twice (first at line {seen[nct_id]})")
        return None
    seen[nct_id] = line
    return nct_id


def _trial(
    nct_id: str, node: Mapping[str, Any], path: str, line: int | None, *, reading: Reading, channel_names: Sequence[str]
) -> Trial:
    """One watched trial's options (none for a bare ID); problems are noted in `reading.validator`."""
    validator = reading.validator
    label = node.get("label")
    if label is not None and not isinstance(label, str | int | float):
        validator.add(line, f"{path}.label", f"expected text, got {kind(label)}")
        label = None
    return Trial(
        nct_id=nct_id,
        label=str(label) if label is not None else None,
        channels=read_channels(node, path, line, validator, channel_names),
        tags=read_key(_TAGS, node, path, reading),
        ignore=read_key(_IGNORE, node, path, reading),
        only=read_key(_ONLY, node, path, reading),
        min_severity=read_key(_MIN_SEVERITY, node, path, reading),
        interval=read_key(_INTERVAL, node, path, reading),
        line=line,
        near=parse_near(node.get("near"), validator, node, f"{path}.near", channel_names),
    )


def _discovery_from(
    doc: Any, trials: tuple[Trial, ...], validator: Validator, channel_names: Sequence[str]
) -> tuple[tuple[Trial, ...], tuple[Search, ...]]:
    """`searches:`, and `tags: {<tag>: {near: …}}` given to the trials of that tag that have none."""
    if not isinstance(doc, Mapping):
        return trials, ()
    by_tag = parse_tag_options(doc, validator, channel_names)
    if by_tag:
        trials = tuple(
            t if t.near is not None else replace(t, near=next((by_tag[g] for g in t.tags if g in by_tag), None))
            for t in trials
        )
    return trials, parse_searches(doc, validator, channel_names)


def load_watchlist(path: Path, channel_names: Sequence[str] = ()) -> Watchlist:
    validator = Validator(path)
    if not path.exists():
        return Watchlist(path=path, trials=())
    doc = read_yaml(path, validator)
    trials = _trials_from(doc, validator, channel_names)
    trials, searches = _discovery_from(doc, trials, validator, channel_names)
    if validator.problems:
        raise ConfigError(validator.problems)
    return Watchlist(path=path, trials=trials, searches=searches)


def parse_watchlist(text: str, path: Path, channel_names: Sequence[str] = ()) -> Watchlist:
    """Validate watchlist text before it is written (CLI edits); raises ConfigError naming `path`."""
    validator = Validator(path)
    doc = load_yaml_text(text, validator)
    if validator.problems:
        raise ConfigError(validator.problems)
    trials = _trials_from(doc, validator, channel_names)
    trials, searches = _discovery_from(doc, trials, validator, channel_names)
    if validator.problems:
        raise ConfigError(validator.problems)
    return Watchlist(path=path, trials=trials, searches=searches)
