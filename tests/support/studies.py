"""Real study records for the field, diff and meaning tests, and a small edit language.

The records come from `tests/support/shared.py` (never copies in the repo); a test asking for
one that is not there is skipped.

Every variant a test needs is a deep copy of a real record with a few edits, so no test
depends on a record shape we made up. Edits (also used by `diff_cases.yaml`):

    {op: set, path: a.b.0.c, value: ...}      set a key or list item (creates missing keys)
    {op: delete, path: a.b.3}                 delete a key or a list item
    {op: append, path: a.list, value: ...}    append an item
    {op: copy, from: a.list.0, to: a.list, with: {k: v}}   append a copy of an item, overridden
    {op: reverse, path: a.list}               reverse a list
    {op: replace, path: a.text, old: s, new: t}   replace text (must occur)
"""

from __future__ import annotations

import copy
from typing import Any

from tests.support.shared import STUDY_IDS as NCT_IDS
from tests.support.shared import load_study as load

__all__ = ["NCT_IDS", "edit", "get", "load"]


def _parent(record: Any, path: str) -> tuple[Any, str | int]:
    parts = path.split(".")
    node = record
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    return node, int(last) if isinstance(node, list) else last


def get(record: Any, path: str) -> Any:
    node, key = _parent(record, path)
    return node[key]


def edit(record: dict[str, Any], edits: list[dict[str, Any]]) -> dict[str, Any]:
    """A deep copy of `record` with the edits applied in order."""
    out = copy.deepcopy(record)
    for step in edits:
        op = step["op"]
        if op == "set":
            node, key = _parent(out, step["path"])
            node[key] = copy.deepcopy(step["value"])
        elif op == "delete":
            node, key = _parent(out, step["path"])
            del node[key]
        elif op == "append":
            get(out, step["path"]).append(copy.deepcopy(step["value"]))
        elif op == "copy":
            item = copy.deepcopy(get(out, step["from"]))
            item.update(copy.deepcopy(step.get("with", {})))
            get(out, step["to"]).append(item)
        elif op == "reverse":
            get(out, step["path"]).reverse()
        elif op == "replace":
            node, key = _parent(out, step["path"])
            if step["old"] not in node[key]:
                raise AssertionError(f"{step['old']!r} not in {step['path']}")
            node[key] = node[key].replace(step["old"], step["new"])
        else:
            raise AssertionError(f"unknown edit op {op!r}")
    return out
