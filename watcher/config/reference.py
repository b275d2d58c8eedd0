"""Every configuration key of both files, as the reference documentation lists them.

The rows come from the keys' one definition (`keys.py`), so the reference cannot list a key the
files do not take, miss one they do, or give a default the parser does not use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from watcher.config.keys import Key, keys_of, walk
from watcher.config.settings import Settings
from watcher.config.watchlist import WATCHLIST


@dataclass(frozen=True, slots=True)
class Reference:
    """One key: its path as the file writes it (`schedule.interval`, `channels.<name>.digest`,
    `trials[].near.km`), what it may be, its default as one would write it (or how it is found), and
    what it does."""

    path: str
    type: str
    default: str
    description: str


def _rows(keys: Sequence[Key]) -> Iterator[Reference]:
    for path, _, key in walk(keys):
        yield Reference(path, key.kind.label, key.shown_default, key.doc)


def settings_reference() -> Iterator[Reference]:
    """The settings file's keys, in the order the file is read."""
    return _rows(keys_of(Settings))


def watchlist_reference() -> Iterator[Reference]:
    """The watchlist file's keys."""
    return _rows(WATCHLIST)
