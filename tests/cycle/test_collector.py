"""The cycle's pause of the garbage collector (`watcher.cycle.collector`): off for the poll, a young
pass per stored page, and the collector as it was afterwards, whatever happens in the block."""

from __future__ import annotations

import gc
import weakref

import pytest

from watcher.cycle.collector import collections_per_page, page_stored


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_collection_is_off_in_the_block_and_back_after_it() -> None:
    assert gc.isenabled()
    with collections_per_page():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collections_per_page():
        raise RuntimeError("a failing poll")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    gc.disable()
    try:
        with collections_per_page():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cyclic_garbage_is_collected_after_each_stored_page() -> None:
    with collections_per_page():
        node = Node()
        gone = weakref.ref(node)
        del node
        assert gone() is not None, "no automatic pass in the block"
        page_stored()
        assert gone() is None
