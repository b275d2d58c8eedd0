"""The watchlist file: which trials are watched, and how, validated whole with file and line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

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
)
from watcher.config.settings import Watchlist
from watcher.config.yamlcheck import Checker, kind, read_yaml
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
_TOP_KEYS = names(WATCHLIST)


def _trials_from(doc: Any, checker: Checker, channel_names: Sequence[str]) -> tuple[Trial, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, Mapping):
        checker.add(1, "", f"expected a mapping with a `trials:` list, got {kind(doc)}")
        return ()
    checker.unknown_keys(doc, _TOP_KEYS, "")
    items = doc.get("trials")
    if items is None:
        return ()
    if not isinstance(items, list):
        checker.add(checker.line_of(doc, "trials"), "trials", f"expected a list, got {kind(items)}")
        return ()
    trials: list[Trial] = []
    seen: dict[str, int | None] = {}
    reading = Reading(checker)
    for index, item in enumerate(items):
        path = f"trials[{index}]"
        line = checker.line_of(items, index)
        node: Mapping[str, Any] = item if isinstance(item, Mapping) else {}
        if isinstance(item, str):
            raw_id: Any = item
        elif isinstance(item, Mapping):
            checker.unknown_keys(item, _TRIAL_KEYS, path)
            raw_id = item.get("id")
            if raw_id is None:
                checker.add(line, f"{path}.id", "missing: each trial needs an NCT ID")
                continue
            path = f"{path}.id"
        else:
            checker.add(line, path, f"expected an NCT ID or a mapping with `id`, got {kind(item)}")
            continue
        if not is_nct_id(str(raw_id)):
            checker.add(line, path, f"{str(raw_id)!r} is not {FULL_FORM}")
            continue
        nct_id = normalize_nct_id(str(raw_id))
        if nct_id in seen:
            checker.add(line, path, f"{nct_id} is listed twice (first at line {seen[nct_id]})")
            continue
        seen[nct_id] = line
        channels = checker.strings(node, "channels", f"trials[{index}].channels") if node.get("channels") else None
        for name in channels or ():
            if name not in channel_names:
                known = ", ".join(channel_names) or "none are configured"
                checker.add(line, f"trials[{index}].channels", f"unknown channel {name!r} (known: {known})")
        label = node.get("label")
        if label is not None and not isinstance(label, str | int | float):
            checker.add(line, f"trials[{index}].label", f"expected text, got {kind(label)}")
            label = None
        trials.append(
            Trial(
                nct_id=nct_id,
                label=str(label) if label is not None else None,
                channels=channels,
                tags=read_key(key_named(TRIAL, "tags"), node, f"trials[{index}]", reading),
                ignore=read_key(key_named(TRIAL, "ignore"), node, f"trials[{index}]", reading),
                only=read_key(key_named(TRIAL, "only"), node, f"trials[{index}]", reading),
                min_severity=read_key(key_named(TRIAL, "min_severity"), node, f"trials[{index}]", reading),
                interval=read_key(key_named(TRIAL, "interval"), node, f"trials[{index}]", reading),
                line=line,
                near=parse_near(node.get("near"), checker, node, f"trials[{index}].near", channel_names),
            )
        )
    return tuple(trials)


def _discovery_from(
    doc: Any, trials: tuple[Trial, ...], checker: Checker, channel_names: Sequence[str]
) -> tuple[tuple[Trial, ...], tuple[Search, ...]]:
    """`searches:`, and `tags: {<tag>: {near: …}}` given to the trials of that tag that have none."""
    if not isinstance(doc, Mapping):
        return trials, ()
    by_tag = parse_tag_options(doc, checker, channel_names)
    if by_tag:
        trials = tuple(
            t if t.near is not None else replace(t, near=next((by_tag[g] for g in t.tags if g in by_tag), None))
            for t in trials
        )
    return trials, parse_searches(doc, checker, channel_names)


def load_watchlist(path: Path, channel_names: Sequence[str] = ()) -> Watchlist:
    checker = Checker(path)
    if not path.exists():
        return Watchlist(path=path, trials=())
    doc = read_yaml(path, checker)
    trials = _trials_from(doc, checker, channel_names)
    trials, searches = _discovery_from(doc, trials, checker, channel_names)
    if checker.problems:
        raise ConfigError(checker.problems)
    return Watchlist(path=path, trials=trials, searches=searches)


def parse_watchlist(text: str, path: Path, channel_names: Sequence[str] = ()) -> Watchlist:
    """Validate watchlist text before it is written (CLI edits); raises ConfigError naming `path`."""
    checker = Checker(path)
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        checker.add(mark.line + 1 if mark else None, "", f"YAML syntax error: {exc.problem or exc.context}")
        raise ConfigError(checker.problems) from exc
    trials = _trials_from(doc, checker, channel_names)
    trials, searches = _discovery_from(doc, trials, checker, channel_names)
    if checker.problems:
        raise ConfigError(checker.problems)
    return Watchlist(path=path, trials=trials, searches=searches)
