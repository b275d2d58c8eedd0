"""Edit the watchlist from the CLI without disturbing what the user wrote.

People keep notes in their watchlist: comments above a trial, their own order, their own
indentation. `add` and `remove` therefore edit the *text*: new items are inserted after the last
item with the indentation the file already uses, and a removed item takes only its own lines (and
the comment lines directly above it, which describe it). ruamel.yaml round-trip is used to find
where items are, and as the fallback for the layouts a line edit cannot handle (flow lists such as
`trials: [NCT…]`, an empty or missing list). Every result is validated as the service would
validate it before it replaces the file, so a CLI edit can never leave a broken watchlist.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from watcher.config.settings import Watchlist
from watcher.config.watchlist import parse_watchlist
from watcher.errors import ConfigError, Problem
from watcher.ids import normalize_nct_id


@dataclass(frozen=True, slots=True)
class NewTrial:
    nct_id: str
    label: str | None = None
    channels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EditResult:
    text: str
    watchlist: Watchlist
    done: tuple[str, ...]  # added, or removed
    skipped: tuple[str, ...]  # already watched, or not watched


# -- locating items in the text ----------------------------------------------------------------


def _load_rt(text: str) -> Any:
    return YAML(typ="rt").load(text) if text.strip() else None


def _block_items(doc: Any) -> CommentedSeq | None:
    """The `trials` list when it is a non-empty block sequence (the case edited line by line)."""
    if not isinstance(doc, CommentedMap):
        return None
    seq = doc.get("trials")
    if not isinstance(seq, CommentedSeq) or not seq or seq.fa.flow_style():
        return None
    return seq


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dash_line(lines: Sequence[str], seq: CommentedSeq, index: int) -> tuple[int, int]:
    """(line number, column) of the `-` that starts item `index`."""
    line, col = seq.lc.item(index)
    for number in range(line, -1, -1):
        stripped = lines[number].lstrip(" ")
        if stripped.startswith("-") and _indent(lines[number]) <= col:
            return number, _indent(lines[number])
    return line, col


def _item_end(lines: Sequence[str], dash: int, col: int) -> int:
    """One past the last line that belongs to the item whose dash is at (`dash`, `col`)."""
    end = dash + 1
    for number in range(dash + 1, len(lines)):
        line = lines[number]
        if not line.strip():
            continue
        if _indent(line) <= col:
            break
        end = number + 1
    return end


def _scalar(value: str) -> str:
    """`value` as a YAML scalar: plain when it reads back the same, else double-quoted."""
    with contextlib.suppress(YAMLError):
        if YAML(typ="safe").load(f"k: {value}") == {"k": value} and "#" not in value:
            return value
    return json.dumps(value, ensure_ascii=False)


def _flow(values: Sequence[str]) -> str:
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


def _item_lines(trial: NewTrial, col: int, key_col: int) -> list[str]:
    dash = " " * col + "-" + " " * max(1, key_col - col - 1)
    if not (trial.label or trial.channels or trial.tags):
        return [dash + trial.nct_id]
    pad = " " * key_col
    lines = [f"{dash}id: {trial.nct_id}"]
    if trial.label:
        lines.append(f"{pad}label: {_scalar(trial.label)}")
    if trial.channels:
        lines.append(f"{pad}channels: {_flow(trial.channels)}")
    if trial.tags:
        lines.append(f"{pad}tags: {_flow(trial.tags)}")
    return lines


# -- edits --------------------------------------------------------------------------------------


def _roundtrip(text: str, change: Any) -> str:
    """Fallback edit through ruamel.yaml round-trip (keeps comments; normalizes the list's layout)."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    doc = _load_rt(text)
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ConfigError([Problem("", 1, "", "expected a mapping with a `trials:` list")])
    seq = doc.get("trials")
    if not isinstance(seq, CommentedSeq):
        seq = CommentedSeq()
        doc["trials"] = seq
    if not seq:
        seq.fa.set_block_style()
    change(seq)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _as_node(trial: NewTrial) -> Any:
    if not (trial.label or trial.channels or trial.tags):
        return trial.nct_id
    node = CommentedMap(id=trial.nct_id)
    if trial.label:
        node["label"] = trial.label
    for key, values in (("channels", trial.channels), ("tags", trial.tags)):
        if values:
            flow = CommentedSeq(values)
            flow.fa.set_flow_style()
            node[key] = flow
    return node


def add_trials(text: str, path: Path, trials: Sequence[NewTrial], channel_names: Sequence[str]) -> EditResult:
    """The watchlist text with `trials` appended; IDs already watched are left as they are."""
    current = parse_watchlist(text, path, channel_names)
    known = {t.nct_id for t in current.trials}
    new: list[NewTrial] = []
    skipped: list[str] = []
    for trial in trials:
        if trial.nct_id in known:
            skipped.append(trial.nct_id)
        else:
            known.add(trial.nct_id)
            new.append(trial)
    if not new:
        return EditResult(text, current, (), tuple(skipped))
    doc = _load_rt(text)
    seq = _block_items(doc)
    if seq is not None:
        lines = text.splitlines(keepends=True)
        dash, col = _dash_line(lines, seq, len(seq) - 1)
        end = _item_end(lines, dash, col)
        key_col = max(seq.lc.item(len(seq) - 1)[1], col + 2)  # where the last item's content starts
        if lines and not lines[end - 1].endswith("\n"):
            lines[end - 1] += "\n"
        added = [line + "\n" for trial in new for line in _item_lines(trial, col, key_col)]
        result = "".join([*lines[:end], *added, *lines[end:]])
    elif doc is None or (isinstance(doc, CommentedMap) and doc.get("trials") is None):
        # no list yet (an empty file, only comments, `trials:` with nothing under it): start one in place
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        added = [line + "\n" for trial in new for line in _item_lines(trial, 2, 4)]
        if isinstance(doc, CommentedMap) and "trials" in doc:
            at = doc.lc.key("trials")[0] + 1
            result = "".join([*lines[:at], *added, *lines[at:]])
        else:
            result = "".join([*lines, "trials:\n", *added])
    else:
        result = _roundtrip(text, lambda s: s.extend(_as_node(t) for t in new))
    watchlist = _checked(result, path, channel_names, [t.nct_id for t in current.trials] + [t.nct_id for t in new])
    return EditResult(result, watchlist, tuple(t.nct_id for t in new), tuple(skipped))


def remove_trials(text: str, path: Path, nct_ids: Sequence[str], channel_names: Sequence[str]) -> EditResult:
    """The watchlist text without `nct_ids` (each with the comment lines directly above it)."""
    current = parse_watchlist(text, path, channel_names)
    watched = [t.nct_id for t in current.trials]
    gone = [i for i in dict.fromkeys(nct_ids) if i in watched]
    skipped = tuple(i for i in dict.fromkeys(nct_ids) if i not in watched)
    if not gone:
        return EditResult(text, current, (), skipped)
    doc = _load_rt(text)
    seq = doc["trials"]
    indexes = [i for i, item in enumerate(seq) if _item_id(item) in gone]
    if _block_items(doc) is not None:
        lines = text.splitlines(keepends=True)
        drop: set[int] = set()
        for index in indexes:
            dash, col = _dash_line(lines, seq, index)
            start = dash
            while start > 0 and lines[start - 1].strip().startswith("#") and _indent(lines[start - 1]) == col:
                start -= 1
            drop.update(range(start, _item_end(lines, dash, col)))
        result = "".join(line for number, line in enumerate(lines) if number not in drop)
    else:

        def delete(s: CommentedSeq) -> None:
            for index in reversed(indexes):
                del s[index]

        result = _roundtrip(text, delete)
    watchlist = _checked(result, path, channel_names, [i for i in watched if i not in gone])
    return EditResult(result, watchlist, tuple(gone), skipped)


def _item_id(item: Any) -> str | None:
    raw = item.get("id") if isinstance(item, CommentedMap) else item
    return normalize_nct_id(str(raw)) if raw is not None else None


def _checked(text: str, path: Path, channel_names: Sequence[str], expected: list[str]) -> Watchlist:
    """Validate the edited text, and make sure the edit did exactly what was asked."""
    watchlist = parse_watchlist(text, path, channel_names)
    if [t.nct_id for t in watchlist.trials] != expected:
        raise ConfigError(
            [
                Problem(
                    str(path),
                    None,
                    "",
                    "the edit did not produce the expected list of trials; "
                    "the file was left unchanged (please report this layout as a bug)",
                )
            ]
        )
    return watchlist


# -- the file -----------------------------------------------------------------------------------


@contextlib.contextmanager
def locked(path: Path) -> Iterator[Path]:
    """Serialize CLI edits of one watchlist (flock on its directory: no lock file left behind)."""
    real = path.resolve()
    real.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(real.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield real
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
