"""Fewer garbage-collector passes while a cycle reads and stores records.

A parsed study is a tree of tens of thousands of dicts and lists, and a page of them is held until
it is stored. With the interpreter's default thresholds (a young pass every 700 new containers) the
collector keeps walking those trees — they never hold reference cycles — and took a quarter of a
first sync's time (`bench/bench_cycle.py`). Passes are made rarer, not switched off: whatever cycles
other code makes are still collected, a little later.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (100_000, 50, 100)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The collector's thresholds raised for the block (never lowered), then put back."""
    before = gc.get_threshold()
    gc.set_threshold(*(max(a, b) for a, b in zip(THRESHOLDS, before, strict=False)))
    try:
        yield
    finally:
        gc.set_threshold(*before)
