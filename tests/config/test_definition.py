"""The keys' one definition and the parsers agree: every key the files take is defined, every defined key is
read, and a key left out gets the default the definition (and so the reference) states."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from watcher.config.channels import ChannelSettings, check_channel_options
from watcher.config.keys import NO_DEFAULT, Key, keys_of, walk
from watcher.config.kinds import FilePath, SeverityRules
from watcher.config.paths import default_database_url, default_state_dir
from watcher.config.reference import Reference, settings_reference, watchlist_reference
from watcher.config.searches import Search
from watcher.config.settings import Settings, collect_settings
from watcher.config.watchlist import WATCHLIST, parse_watchlist
from watcher.config.yamlcheck import format_duration, parse_duration
from watcher.errors import ConfigError, Problem

BAD = [[1]]  # a list of lists: no kind of value takes it
NCT = "NCT04728893"
CONTEXT: dict[str, dict[str, Any]] = {
    # what a mapping needs before its other keys are read, or to be valid without the key under test
    "channels.<name>": {"url": "json://localhost/x"},
    "channels.<name>.studies": {"conditions": "*lung*", "sponsors": "Acme"},
    "trials[]": {"id": NCT},
    "searches[]": {"name": "s", "query": {"cond": "x"}},
    "trials[].near": {"lat": 42.36, "lon": -71.06, "km": 5, "place": "Boston"},
    "searches[].near": {"lat": 42.36, "lon": -71.06, "km": 5},
    "tags.<tag>.near": {"lat": 42.36, "lon": -71.06, "km": 5, "place": "Boston"},
}
PLACEHOLDERS = {"<name>": "ok", "<tag>": "t"}


def settings_keys() -> list[tuple[str, tuple[str, ...], Key]]:
    return list(walk(keys_of(Settings)))


def watchlist_keys() -> list[tuple[str, tuple[str, ...], Key]]:
    return list(walk(WATCHLIST))


def segments(path: str) -> list[str]:
    return path.split(".") if path else []


def concrete(path: str) -> str:
    """`channels.<name>.url` → `channels.ok.url`; `trials[].id` → `trials[0].id`."""
    for placeholder, value in PLACEHOLDERS.items():
        path = path.replace(placeholder, value)
    return path.replace("[]", "[0]")


def document(path: str, value: Any) -> dict[str, Any]:
    """A document with `value` at `path`, and each enclosing mapping's context."""
    root: dict[str, Any] = {}
    node = root
    parts = segments(path)
    for depth, part in enumerate(parts[:-1]):
        prefix = ".".join(parts[: depth + 1])
        name = PLACEHOLDERS.get(part, part.removesuffix("[]"))
        child: dict[str, Any] = dict(CONTEXT.get(prefix, {}))
        if part.endswith("[]"):
            node[name] = [child]
        else:
            node[name] = child
        node = child
    if path.startswith("channels.<name>.studies"):
        root["registry"] = {"all": True}
    node[parts[-1]] = value
    return root


def dump(doc: Any) -> str:
    out = io.StringIO()
    YAML().dump(doc, out)
    return out.getvalue()


def settings_problems(tmp_path: Path, doc: Any) -> tuple[Settings, list[Problem]]:
    path = tmp_path / "trialwatch.yaml"
    path.write_text(dump(doc))
    return collect_settings(path, environ={"XDG_STATE_HOME": str(tmp_path / "state")})


def watchlist_problems(doc: Any) -> list[Problem]:
    try:
        parse_watchlist(dump(doc), Path("watchlist.yaml"), ["ok"])
    except ConfigError as exc:
        return list(exc.problems)
    return []


def at(problems: list[Problem], path: str) -> list[str]:
    """The messages about `path` or a key under it."""
    return [p.message for p in problems if p.key == path or p.key.startswith((f"{path}.", f"{path}["))]


# -- every defined key is read ---------------------------------------------------------------------


@pytest.mark.parametrize(("path", "fields", "key"), settings_keys(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_settings_key_is_read(tmp_path: Path, path: str, fields: tuple[str, ...], key: Key) -> None:
    _, problems = settings_problems(tmp_path, document(path, BAD))
    assert at(problems, concrete(path)), [str(p) for p in problems]
    assert not [p for p in problems if p.message.startswith("unknown key")]


@pytest.mark.parametrize(("path", "fields", "key"), watchlist_keys(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_watchlist_key_is_read(path: str, fields: tuple[str, ...], key: Key) -> None:
    problems = watchlist_problems(document(path, BAD))
    assert at(problems, concrete(path)), [str(p) for p in problems]
    assert not [p for p in problems if p.message.startswith("unknown key")]


# -- every key read is defined -----------------------------------------------------------------------


def mappings(paths: list[str]) -> Iterator[tuple[str, list[str]]]:
    """Each mapping of keys the definition has (its path, its keys in order); not a mapping of names."""
    children: dict[str, list[str]] = {}
    for path in paths:
        parts = segments(path)
        for depth in range(len(parts)):
            prefix, child = ".".join(parts[:depth]), parts[depth].removesuffix("[]")
            known = children.setdefault(prefix, [])
            if child not in known:
                known.append(child)
    for prefix, keys in children.items():
        if not any(k.startswith("<") for k in keys):
            yield prefix, keys


def unknown(prefix: str) -> str:
    return concrete(f"{prefix}.colour" if prefix else "colour")


@pytest.mark.parametrize(("prefix", "keys"), list(mappings([p for p, _, _ in settings_keys()])))
def test_each_settings_mapping_takes_exactly_the_defined_keys(tmp_path: Path, prefix: str, keys: list[str]) -> None:
    _, problems = settings_problems(tmp_path, document(f"{prefix}.colour" if prefix else "colour", "blue"))
    assert at(problems, unknown(prefix)) == [f"unknown key (expected one of: {', '.join(keys)})"]


@pytest.mark.parametrize(("prefix", "keys"), list(mappings([p for p, _, _ in watchlist_keys()])))
def test_each_watchlist_mapping_takes_exactly_the_defined_keys(prefix: str, keys: list[str]) -> None:
    problems = watchlist_problems(document(f"{prefix}.colour" if prefix else "colour", "blue"))
    assert at(problems, unknown(prefix)) == [f"unknown key (expected one of: {', '.join(keys)})"]


def test_only_bookkeeping_fields_are_not_keys() -> None:
    """A field added without `setting(…)` would be silently unconfigurable."""

    def plain(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)} - {k.field for k in keys_of(cls)}

    assert plain(Settings) == {"path"}
    assert plain(ChannelSettings) == {"name"}
    assert plain(Search) == {"line"}


# -- defaults ----------------------------------------------------------------------------------------


def value_at(root: Any, fields: tuple[str, ...]) -> Any:
    for name in fields:
        if name in PLACEHOLDERS:
            root = root[PLACEHOLDERS[name]]
        elif name == "[]":
            root = root[0]
        else:
            root = getattr(root, name)
    return root


def expected(key: Key, base: Path) -> Any:
    return base / key.default if isinstance(key.kind, FilePath) and key.default is not None else key.default


def without(path: str, *others: str) -> dict[str, Any]:
    """The document of `path` with its key (and `others` beside it) left out."""
    doc = document(path, None)
    node: Any = doc
    parts = segments(path)
    for part in parts[:-1]:
        node = node[PLACEHOLDERS.get(part, part.removesuffix("[]"))]
        node = node[0] if part.endswith("[]") else node
    for name in (parts[-1], *others):
        del node[name]
    return doc


@pytest.mark.parametrize(
    ("path", "fields", "key"),
    [k for k in settings_keys() if k[2].default is not NO_DEFAULT],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_an_absent_settings_key_takes_the_defined_default(
    tmp_path: Path, path: str, fields: tuple[str, ...], key: Key
) -> None:
    settings, problems = settings_problems(tmp_path, without(path))
    assert problems == []
    assert value_at(settings, fields) == expected(key, tmp_path)


@pytest.mark.parametrize(
    ("path", "fields", "key"),
    # a search's and a tag's `near` are the trials' (one table, one parser); a search's needs lat and lon
    [
        k
        for k in watchlist_keys()
        if k[2].default is not NO_DEFAULT and not k[0].startswith(("tags.", "searches[].near"))
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_an_absent_watchlist_key_takes_the_defined_default(path: str, fields: tuple[str, ...], key: Key) -> None:
    point = {"trials[].near.lat": ("lon",), "trials[].near.lon": ("lat",)}  # a point is both, or a place
    watchlist = parse_watchlist(dump(without(path, *point.get(path, ()))), Path("watchlist.yaml"), ["ok"])
    assert value_at(watchlist, fields) == key.default


def test_computed_defaults_are_what_the_parser_computes(tmp_path: Path) -> None:
    settings, problems = collect_settings(None, {"STATE_DIRECTORY": str(tmp_path / "tw")})
    assert problems == []
    assert settings.state_dir == default_state_dir({"STATE_DIRECTORY": str(tmp_path / "tw")}) == tmp_path / "tw"
    assert settings.storage_url == default_database_url(tmp_path / "tw")


def literal_defaults() -> list[tuple[str, tuple[str, ...], Key]]:
    return [
        k
        for k in settings_keys()
        if k[2].default not in (NO_DEFAULT, None, ()) and not isinstance(k[2].kind, SeverityRules)
    ]


@pytest.mark.parametrize(("path", "fields", "key"), literal_defaults(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_default_as_the_reference_shows_it_reads_back_as_the_default(
    tmp_path: Path, path: str, fields: tuple[str, ...], key: Key
) -> None:
    """What the documentation prints as the default is valid input that means the default."""
    written = YAML().load(f"value: {key.kind.show(key.default)}")["value"]
    settings, problems = settings_problems(tmp_path, document(path, written))
    assert [str(p) for p in problems if p.key == concrete(path)] == []
    assert value_at(settings, fields) == expected(key, tmp_path)


# -- the reference -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [list(settings_reference()), list(watchlist_reference())])
def test_the_reference_has_one_described_row_per_key(rows: list[Reference]) -> None:
    assert len({r.path for r in rows}) == len(rows)
    assert all(r.type and r.default and r.description for r in rows), [r for r in rows if not r.description]


def test_the_reference_rows_read_like_the_documentation() -> None:
    rows = {r.path: r for r in settings_reference()}
    assert rows["schedule.interval"] == Reference(
        "schedule.interval", "duration (10s, 30m, 6h, 1d, 1h30m) > 0s", "6h", "how often every trial is polled"
    )
    assert rows["channels.<name>.timeout"].type == "duration (10s, 30m, 6h, 1d, 1h30m) from 1s to 10m"
    assert rows["storage.url"].default == "sqlite:///<state_dir>/trialwatch.sqlite"
    assert rows["channels.<name>.url"].default == "required"
    assert rows["api.max_retries"].type == "whole number ≥ 0"
    assert {r.path for r in watchlist_reference()} >= {"trials[].id", "searches[].near.km", "tags.<tag>.near.place"}


# -- ranges and the order of problems ---------------------------------------------------------------


def test_a_section_reports_what_it_cannot_read_before_what_it_refuses(tmp_path: Path) -> None:
    doc = {"api": {"max_retries": -1, "backoff_base": "soon"}, "feeds": {"days": 0, "per_tag": "yes"}}
    _, problems = settings_problems(tmp_path, doc)
    assert [(p.key, p.message) for p in problems] == [
        ("api.backoff_base", "expected a number, got str 'soon'"),
        ("api.max_retries", "must be at least 0, got -1"),
        ("feeds.per_tag", "expected true or false, got str 'yes'"),
        ("feeds.days", "must be at least 1, got 0"),
    ]


def test_a_bound_is_reported_as_written(tmp_path: Path) -> None:
    doc = {"api": {"timeout": 0.05}, "backfill": {"max_bytes": 10.0}}
    _, problems = settings_problems(tmp_path, doc)
    assert [p.message for p in problems] == ["must be at least 0.1, got 0.05", "must be at least 1000, got 10.0"]


def test_channel_checks_come_from_the_definition() -> None:
    assert dict(check_channel_options(heartbeat=timedelta(seconds=59), timeout=timedelta(minutes=11))) == {
        "heartbeat": "must be at least 1m",
        "timeout": "must be between 1s and 10m (it bounds each network wait of one send)",
    }
    assert list(check_channel_options(heartbeat=timedelta(minutes=1), timeout=timedelta(seconds=1))) == []


@given(st.integers(min_value=0, max_value=400 * 86400).map(lambda s: timedelta(seconds=s)))
def test_a_duration_written_by_format_duration_reads_back(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("doc", [{"storage": {"url": ""}}, {"storage": {"url": None}}, {"state_dir": ""}])
def test_an_empty_text_means_the_computed_default(tmp_path: Path, doc: dict[str, Any]) -> None:
    settings, problems = settings_problems(tmp_path, doc)
    assert problems == []
    assert settings.state_dir == tmp_path / "state" / "trialwatch"
    assert settings.storage_url == default_database_url(settings.state_dir)


def test_an_unreadable_key_with_a_computed_default_is_one_problem(tmp_path: Path) -> None:
    _, problems = settings_problems(tmp_path, {"state_dir": ["a"], "storage": {"url": 5}})
    assert [f"{p.key}: {p.message}" for p in problems] == [
        "storage.url: expected a string, got int 5",
        "state_dir: expected a string, got a list",
    ]
