"""The garbage collector paused while a cycle polls and stores records, and run once per page.

A parsed study is a tree of tens of thousands of dicts and lists, and a page of them is held until
it is stored. With the interpreter's default thresholds (a young pass every 700 new containers, full
passes as the heap grows) the collector keeps walking those trees — which never hold reference
cycles — and took about a quarter of a first sync's time (`bench/bench_cycle.py`). So automatic
passes are off for the cycle and `page_stored` runs a young pass after each stored page, when the
page is gone: what reference cycles other code makes meanwhile are still collected, once a page.
It also hands the C heap's free memory back (glibc's `malloc_trim`), so the peak RSS stays that of
one page rather than creeping up with the number of pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None elsewhere (musl, macOS): the C heap's free pages back to the system."""
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return trim


_TRIM = _malloc_trim()


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
    """The objects made since the last pass, nearly all garbage once a page is stored: a young pass.
    Then the C heap's free pages go back to the system (glibc keeps them otherwise): a page's
    records and their canonical bytes come and go by the megabyte, and without it the peak RSS of a
    first sync grows with the number of trials (`bench_cycle`: 215 MB at 100,000)."""
    gc.collect(1)
    if _TRIM is not None:
        _TRIM(0)
