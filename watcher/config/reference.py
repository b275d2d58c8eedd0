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


def _cell(text: str) -> str:
    """A table cell: backticked spans kept as written, the rest escaped so a `*` in a cron
    expression or a `<name>` placeholder reads as written, and `|` never splits the row."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        for char in "\\*_<":
            parts[i] = parts[i].replace(char, "\\" + char)
    return "`".join(parts).replace("|", "\\|")


def markdown_table(rows: Iterator[Reference]) -> str:
    """The rows as the documentation's Markdown table (its reference page is built from this)."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [
        f"| `{r.path}` | {_cell(r.type)} | {_cell(r.default)} | {_cell(r.description)} |".replace("`|", "`\\|")
        for r in rows
    ]
    return "\n".join(lines) + "\n"
