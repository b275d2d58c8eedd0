"""The nesting check reads orjson's text, not the record: it must answer exactly as a walk does,
whatever brackets, quotes and escapes the strings hold and wherever the empty containers are."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.shared import load_studies
from watcher.registry.depth import MAX_DEPTH, _walk_over, depth_over

TRICKY = ["plain", "a\n", 'quote " inside', 'x]]]\\"[[', "[[[", "]]]", "back\\", '\\"]', "{", "}"]


def nest(levels: int, inner: Any) -> Any:
    for _ in range(levels):
        inner = [inner]
    return inner


@pytest.mark.parametrize("levels", range(MAX_DEPTH - 3, MAX_DEPTH + 3))
@pytest.mark.parametrize("inner", [1, [], {}, [1], {"a": 1}, {'k]"[': []}, *TRICKY])
def test_the_check_answers_as_the_walk(levels: int, inner: Any) -> None:
    for value in (nest(levels, inner), {"a": nest(levels, inner), "b": [1, {"c": "]]\n"}], "d": TRICKY}):
        assert depth_over(value) == _walk_over(value, MAX_DEPTH)


def test_an_item_one_level_past_the_bound_is_over_and_an_empty_container_there_is_not() -> None:
    assert depth_over(nest(MAX_DEPTH + 1, 1))
    assert not depth_over(nest(MAX_DEPTH, 1))
    assert not depth_over(nest(MAX_DEPTH, []))  # the empty list is at depth 64: nothing deeper
    assert depth_over(nest(MAX_DEPTH, [1]))


def test_strings_full_of_brackets_never_hide_a_deep_record() -> None:
    closers, openers = "]" * 60, "[" * 60
    value = nest(30, [closers, nest(40, [openers, nest(10, 1)])])
    assert depth_over(value) == _walk_over(value, MAX_DEPTH) is True


def test_what_orjson_refuses_is_walked() -> None:
    assert not depth_over({"big": 2**70, "list": nest(10, 1)})
    assert depth_over({"big": 2**70, "list": nest(MAX_DEPTH + 1, 1)})
    assert depth_over(nest(300, 1))  # past orjson's own bound


def test_real_records_are_within_the_bound() -> None:
    for record in load_studies():
        assert not depth_over(record)
