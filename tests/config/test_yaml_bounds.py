"""Hostile YAML: an alias bomb is a clear configuration error read in bounded memory, and values put
into error messages are rendered bounded whatever they hold."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.support.hostile import alias_bomb
from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.config.watchlist import parse_watchlist
from watcher.config.yamlbounds import ALIAS_EXPANSION_LIMIT, alias_overflow, short_repr
from watcher.config.yamlcheck import Validator
from watcher.errors import ConfigError

PEAK_BYTES = 64 * 2**20


def _refused_in_bounded_memory(load: object) -> ConfigError:
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as refused:
            load()  # type: ignore[operator]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"reading the bomb peaked at {peak / 2**20:.0f} MiB"
    return refused.value


def test_the_bomb_is_small() -> None:
    assert len(alias_bomb().encode()) < 500 and 9**10 > 3 * 10**9  # a few hundred bytes, billions of strings


def test_an_alias_bomb_in_the_watchlist_is_refused_with_file_and_line(workspace: Workspace) -> None:
    workspace.write(trials=["NCT04728893"])
    workspace.watchlist.write_text(alias_bomb() + "trials: *bomb\n")
    error = _refused_in_bounded_memory(lambda: load_config(workspace.settings, {}))
    (problem,) = error.problems
    assert problem.file == str(workspace.watchlist) and problem.line is not None and 1 < problem.line <= 10
    assert f"more than {ALIAS_EXPANSION_LIMIT:,} values" in problem.message and len(str(error)) < 400


def test_an_alias_bomb_in_the_settings_is_refused_with_file_and_line(workspace: Workspace) -> None:
    workspace.write(trials=["NCT04728893"])
    text = workspace.settings.read_text()
    workspace.settings.write_text(text + alias_bomb(top="x_bomb") + "x_channels: *x_bomb\n")
    error = _refused_in_bounded_memory(lambda: load_config(workspace.settings, {}))
    (problem,) = error.problems
    assert problem.file == str(workspace.settings) and problem.line is not None
    assert "YAML aliases expand" in problem.message


def test_the_cli_edit_path_refuses_the_bomb_too(tmp_path: Path) -> None:
    error = _refused_in_bounded_memory(lambda: parse_watchlist(alias_bomb() + "trials: *bomb\n", tmp_path / "w.yaml"))
    assert "YAML aliases expand" in str(error)


def test_a_bomb_below_the_bound_still_reaches_validators_that_render_it_bounded(tmp_path: Path) -> None:
    """Three levels (9**4 = 6,561 strings, under the bound): the validator's message quotes the value,
    and the quote stays short."""
    text = alias_bomb(levels=3) + "trials: [*bomb]\n"
    with pytest.raises(ConfigError) as refused:
        parse_watchlist(text, tmp_path / "w.yaml")
    assert "expected an NCT ID" in str(refused.value) and len(str(refused.value)) < 1000


def test_ordinary_aliases_pass_and_a_value_containing_itself_does_not() -> None:
    reused = "team: &team [a, b, c]\ntrials:\n" + "".join(
        f"  - {{id: NCT{n:08d}, channels: *team}}\n" for n in range(3000)
    )
    document = YAML(typ="rt").load(reused)
    assert alias_overflow(document, Validator.line_of) is None
    looped: list[object] = [1]
    looped.append({"again": looped})  # a loader may build this from `a: &a [1, {again: *a}]`
    overflow = alias_overflow({"a": looped}, lambda parent, key: None)
    assert overflow is not None and overflow.path == "a[1].again" and "refers to" in overflow.message


def test_a_deeply_nested_document_is_walked_without_recursion() -> None:
    nested: list[object] = []
    for _ in range(100_000):
        nested = [nested]
    assert alias_overflow(nested, lambda parent, key: None) is None


@pytest.mark.parametrize(
    "value",
    [
        "x" * 10**6,
        list(range(10**6)),
        {str(n): [n] * 100 for n in range(10**4)},
        [[[[[[["deep"]]]]]]],
        10**5000,
    ],
    ids=["long-string", "long-list", "big-mapping", "deep", "huge-int"],
)
def test_short_repr_is_bounded(value: object) -> None:
    shown = short_repr(value)
    assert 0 < len(shown) <= 80
