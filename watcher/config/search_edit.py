"""`trialwatch search add/remove`: edit the watchlist's `searches:` list, keeping comments.

The edit goes through ruamel.yaml round-trip (the `trials:` list and every comment stay as they
are) and the result is validated as the service would validate it before it replaces the file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from watcher.config.edit import EditResult
from watcher.config.watchlist import parse_watchlist
from watcher.errors import ConfigError, Problem


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def _edit(text: str, path: Path, change: Any) -> str:
    doc = _yaml().load(text) if text.strip() else None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ConfigError([Problem(str(path), 1, "", "expected a mapping with `trials:` or `searches:`")])
    seq = doc.get("searches")
    if not isinstance(seq, CommentedSeq):
        seq = CommentedSeq()
        doc["searches"] = seq
    change(seq)
    if not seq:
        del doc["searches"]
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def _flow(value: Any) -> Any:
    if isinstance(value, Mapping):
        node = CommentedMap((k, _flow(v)) for k, v in value.items())
        node.fa.set_flow_style()
        return node
    if isinstance(value, list | tuple):
        seq = CommentedSeq(list(value))
        seq.fa.set_flow_style()
        return seq
    return value


def add_search(
    text: str, path: Path, search: Mapping[str, Any], channel_names: Sequence[str], *, replace: bool = False
) -> EditResult:
    """Append `search` (the mapping a user would write); an existing name is skipped, or replaced."""
    name = str(search["name"])
    names = [s.name for s in parse_watchlist(text, path, channel_names).searches] if text.strip() else []
    if name in names and not replace:
        return EditResult(text, parse_watchlist(text, path, channel_names), (), (name,))
    node = CommentedMap((k, _flow(v)) for k, v in search.items() if v not in (None, (), [], {}))

    def change(seq: CommentedSeq) -> None:
        for index, item in enumerate(seq):
            if isinstance(item, Mapping) and item.get("name") == name:
                seq[index] = node
                return
        seq.append(node)

    new = _edit(text, path, change)
    return EditResult(new, parse_watchlist(new, path, channel_names), (name,), ())


def remove_search(text: str, path: Path, name: str, channel_names: Sequence[str]) -> EditResult:
    current = parse_watchlist(text, path, channel_names) if text.strip() else None
    if current is None or name not in [s.name for s in current.searches]:
        return EditResult(text, current or parse_watchlist("{}", path, channel_names), (), (name,))

    def change(seq: CommentedSeq) -> None:
        for index, item in enumerate(seq):
            if isinstance(item, Mapping) and item.get("name") == name:
                del seq[index]
                return

    new = _edit(text, path, change)
    return EditResult(new, parse_watchlist(new, path, channel_names), (name,), ())
