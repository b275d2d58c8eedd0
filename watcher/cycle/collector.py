"""The garbage collector paused while a cycle polls and stores records, and run once per page.

A parsed study is a tree of tens of thousands of dicts and lists, and a page of them is held until
it is stored. With the interpreter's default thresholds (a young pass every 700 new containers, full
passes as the heap grows) the collector keeps walking those trees — which never hold reference
cycles — and took about a quarter of a first sync's time (`bench/bench_cycle.py`). So automatic
passes are off for the cycle and `page_stored` runs a young pass after each stored page, when the
page is gone: what reference cycles other code makes meanwhile are still collected, once a page.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collections_per_page() -> Iterator[None]:
    """Automatic collection off for the block (and back on after it, if it was on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect(1)


def page_stored() -> None:
    """The objects made since the last pass, nearly all garbage once a page is stored: a young pass."""
    gc.collect(1)
