"""Parsing configuration YAML at libyaml's speed, keeping the line of every key and item.

Every command reads the settings file and the watchlist, and a watchlist may list 10,000 trials, so
reading runs at libyaml's speed: PyYAML's C parser composes the node tree (each node knows where it
starts) and `_Builder` turns it into dicts and lists that carry those lines in `lc`, the attribute
ruamel.yaml's round-trip types use, so `Validator.line_of` reads both. Round-trip loading, which
keeps comments and is ten times slower, is only for edits (`watcher.config.edit`).

Scalars are resolved as YAML 1.2 (core schema) resolves them, as ruamel.yaml does: `yes`, `no`, `on`
and `off` stay text, `010` is ten, `1:30` is text. A key given twice in one mapping is an error, as in
ruamel.yaml. `compose_config_yaml` is the one place configuration YAML is parsed; what the loaded
document may cost is bounded by `watcher.config.yamlbounds`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from watcher.config.yamlbounds import short_repr

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when PyYAML was built with libyaml


class YamlSyntaxError(ValueError):
    """The text is not YAML: `line` (1-based, None when unknown) and what the parser said."""

    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


class Lines:
    """Where a mapping's keys or a list's items start (0-based, like ruamel.yaml's `lc`)."""

    __slots__ = ("col", "line", "starts")

    def __init__(self, line: int, col: int, starts: dict[Any, tuple[int, int]]) -> None:
        self.line, self.col, self.starts = line, col, starts

    def key(self, key: Any) -> tuple[int, int]:
        return self.starts[key]

    def item(self, index: int) -> tuple[int, int]:
        return self.starts[index]


class MarkedMap(dict[Any, Any]):
    """A mapping read from YAML; `lc` says where it and each key start."""

    __slots__ = ("lc",)
    lc: Lines


class MarkedSeq(list[Any]):
    """A list read from YAML; `lc` says where it and each item start."""

    __slots__ = ("lc",)
    lc: Lines


def _int(text: str) -> int:
    body = text.replace("_", "")
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    if body.startswith(("0o", "0x", "0b")):
        return sign * int(body, 0)
    return sign * int(body, 10)


def _float(text: str) -> float:
    body = text.replace("_", "").lower()
    if body.endswith(".nan"):
        return float("nan")
    if body.endswith(".inf"):
        return float("-inf") if body.startswith("-") else float("inf")
    return float(body)


_CORE: list[tuple[str, str, str]] = [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tfTF"),
    ("int", r"^(?:[-+]?[0-9_]+|[-+]?0o[0-7_]+|[-+]?0x[0-9a-fA-F_]+|[-+]?0b[01_]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
]


class _Core12Loader(_Loader):  # type: ignore[misc]
    """libyaml's parser with YAML 1.2 core-schema scalars (what ruamel.yaml reads by default)."""


_Core12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag.rsplit(":", 1)[-1] not in {"bool", "int", "float"}]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _name, _pattern, _firsts in _CORE:
    _Core12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_name}", re.compile(_pattern), list(_firsts))

_SCALARS: dict[str, Callable[[str], Any]] = {
    "tag:yaml.org,2002:bool": lambda text: text.lower() == "true",
    "tag:yaml.org,2002:int": _int,
    "tag:yaml.org,2002:float": _float,
    "tag:yaml.org,2002:str": str,
    "tag:yaml.org,2002:null": lambda _text: None,
}


class _Builder:
    """Turns composed nodes into `MarkedMap`, `MarkedSeq` and plain scalars; a node met again through an
    alias is built once and shared."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.built: dict[int, Any] = {}

    def build(self, node: yaml.Node) -> Any:
        done = self.built.get(id(node), self)
        if done is not self:
            return done
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node)
        scalar = _SCALARS.get(node.tag)
        value = scalar(node.value) if scalar is not None else self.loader.construct_object(node, deep=True)
        self.built[id(node)] = value
        return value

    def _sequence(self, node: yaml.SequenceNode) -> MarkedSeq:
        seq = MarkedSeq()
        seq.lc = Lines(node.start_mark.line, node.start_mark.column, {})
        self.built[id(node)] = seq
        starts = seq.lc.starts
        for index, child in enumerate(node.value):
            starts[index] = (child.start_mark.line, child.start_mark.column)
            seq.append(self.build(child))
        return seq

    def _mapping(self, node: yaml.MappingNode) -> MarkedMap:
        mapping = MarkedMap()
        mapping.lc = Lines(node.start_mark.line, node.start_mark.column, {})
        self.built[id(node)] = mapping
        self.loader.flatten_mapping(node)  # `<<` merge keys, as every YAML loader reads them
        starts = mapping.lc.starts
        for key_node, value_node in node.value:
            key = self.build(key_node)
            if key in starts:
                line = key_node.start_mark.line + 1
                raise YamlSyntaxError(line, f"duplicate key {short_repr(key)} (first at line {starts[key][0] + 1})")
            starts[key] = (key_node.start_mark.line, key_node.start_mark.column)
            mapping[key] = self.build(value_node)
        return mapping


def compose_config_yaml(text: str) -> yaml.Node | None:
    """The node tree of one configuration document: the single place configuration YAML is parsed
    (a bound on what aliases may expand to belongs here). Raises YamlSyntaxError."""
    loader = _Core12Loader(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(mark.line + 1 if mark else None, str(exc.problem or exc.context)) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, str(exc)) from exc
    finally:
        loader.dispose()
    return node


def load_config_yaml(text: str) -> Any:
    """One configuration document as `MarkedMap`, `MarkedSeq` and scalars, with lines; None when empty.
    Raises YamlSyntaxError."""
    node = compose_config_yaml(text)
    if node is None:
        return None
    builder = _Builder(_Core12Loader(""))
    try:
        return builder.build(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(mark.line + 1 if mark else None, str(exc.problem or exc.context)) from exc
