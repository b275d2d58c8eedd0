"""The one definition of every configuration key, kept on the dataclass field that holds its value.

`field(default=…, metadata=setting(doc, kind))` says that a YAML key fills the field, what the key may
be (its kind: type and range, `kinds.py`) and, in one line, what it does; the field's own default is
the key's default. `read_keys` reads a section through these definitions, so a key is accepted,
typed, defaulted and documented from one place; `reference.py` walks them for the documentation.
Values defined outside this package (a watched trial, a studies filter) get the same `Key`s from a
table, `described(cls, …)`, which takes the defaults from that class's fields.

Plain dataclasses and our own validator rather than a schema library: msgspec stops at the first
error, and pydantic, which collects them all, words them its own way, so each of our messages (with
file, line and key path) would need a translation layer as long as the validator it replaces.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields, replace
from functools import cache
from typing import Any

from watcher.config.kinds import Reading, ValueKind

SETTING = "setting"


class _NoDefault:
    """A key that must be written, or whose default is computed when the file is read."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key. `name` is its path within its section, dotted where a flat dataclass
    takes keys from a sub-mapping (`schedule.interval`); `computed` says in words how a default that
    depends on the environment or on another key is found (the field then has no default)."""

    doc: str
    kind: ValueKind[Any]
    name: str = ""
    field: str = ""
    computed: str = ""
    default: Any = NO_DEFAULT

    @property
    def shown_default(self) -> str:
        return self.computed or ("required" if self.default is NO_DEFAULT else self.kind.show(self.default))


def setting(doc: str, kind: ValueKind[Any], *, key: str = "", computed: str = "") -> dict[str, Key]:
    """A field's metadata: the key that fills it (default: the field's name), its kind and its line of doc."""
    return {SETTING: Key(doc, kind, key, computed=computed)}


def _default(cls: type, name: str) -> Any:
    found = next(f for f in fields(cls) if f.name == name)
    if found.default is not MISSING:
        return found.default
    if found.default_factory is not MISSING:
        return found.default_factory()
    return NO_DEFAULT


@cache
def keys_of(cls: type) -> tuple[Key, ...]:
    """The keys of a dataclass, in field order: the fields with `setting(…)` metadata."""
    return tuple(
        replace(key, name=key.name or f.name, field=f.name, default=_default(cls, f.name))
        for f in fields(cls)
        if (key := f.metadata.get(SETTING)) is not None
    )


def described(cls: type, *keys: Key) -> tuple[Key, ...]:
    """Keys for a class defined outside this package; `Key.field` defaults to the key's name."""
    return tuple(replace(k, field=k.field or k.name, default=_default(cls, k.field or k.name)) for k in keys)


def key_named(keys: Sequence[Key], name: str) -> Key:
    return next(k for k in keys if k.name == name)


def names(keys: Sequence[Key]) -> tuple[str, ...]:
    """The keys a section accepts, in the order the unknown-key message lists them."""
    return tuple(dict.fromkeys(k.name.partition(".")[0] for k in keys))


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _read(key: Key, node: Mapping[str, Any], path: str, reading: Reading) -> tuple[Any, bool]:
    """A key's value (its default when absent), and whether it was read well enough to be checked."""
    if key.name not in node:
        return key.kind.absent(key.default, reading), False
    before = len(reading.validator.problems)
    value = key.kind.read(node, key.name, join(path, key.name), key.default, reading)
    return value, len(reading.validator.problems) == before and value is not NO_DEFAULT


def _check(key: Key, value: Any, node: Mapping[str, Any], path: str, reading: Reading) -> None:
    if key.kind.looked_up and not reading.look_up:
        return
    if problem := key.kind.check(value, node[key.name]):
        reading.validator.add(reading.validator.line_of(node, key.name), join(path, key.name), problem)


def read_key(key: Key, node: Mapping[str, Any], path: str, reading: Reading) -> Any:
    """One key's value (its default when absent), read and checked."""
    value, due = _read(key, node, path, reading)
    if due:
        _check(key, value, node, path, reading)
    return value


def read_keys(
    keys: Sequence[Key],
    node: Mapping[str, Any],
    path: str,
    reading: Reading,
    *,
    known: Mapping[str, Any] | None = None,
    unknown_checked: bool = False,
) -> dict[str, Any]:
    """The values of `keys` in `node` by field name; the caller has read the fields in `known`, and
    looked for unknown keys itself when `unknown_checked`.

    Problems come in one order everywhere: keys that are not in the definition, then what each key's
    kind cannot read, then what it refuses on checking; a dotted group (`schedule.*`) is a mapping
    read the same way where its first key would be. An absent key whose default is computed is left
    out, for the caller to compute.
    """
    groups: dict[str, list[Key]] = {}
    for key in keys:
        head, _, rest = key.name.partition(".")
        groups.setdefault(head, []).append(replace(key, name=rest) if rest else key)
    if not unknown_checked:
        reading.validator.unknown_keys(node, list(groups), path)
    values: dict[str, Any] = dict(known or {})
    due: list[Key] = [key for key in keys if key.field in values]
    for head, members in groups.items():
        if members[0].name != head:
            section = reading.validator.mapping(node, head, join(path, head)) or {}
            values.update(read_keys(members, section, join(path, head), reading))
        elif members[0].field not in values:
            values[members[0].field], checkable = _read(members[0], node, path, reading)
            due += [members[0]] if checkable else []
    for key in due:
        _check(key, values[key.field], node, path, reading)
    return {name: value for name, value in values.items() if value is not NO_DEFAULT}


@dataclass(frozen=True, slots=True)
class Section(ValueKind[Any]):
    """A mapping of keys that fills a dataclass of its own (`api:` → ApiSettings)."""

    cls: type

    @property
    def label(self) -> str:
        return "mapping"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: Any, reading: Reading) -> Any:
        section = reading.validator.mapping(node, key, path)
        return self.cls(**read_keys(keys_of(self.cls), section or {}, path, reading))

    def absent(self, default: Any, reading: Reading) -> Any:
        return self.cls(**read_keys(keys_of(self.cls), {}, "", reading))

    def members(self) -> tuple[str, tuple[Key, ...]]:
        return ".", keys_of(self.cls)


def walk(
    keys: Sequence[Key], prefix: str = "", attributes: tuple[str, ...] = ()
) -> Iterator[tuple[str, tuple[str, ...], Key]]:
    """Every key that holds a value, depth first in definition order: its path as the file writes it
    (`channels.<name>.digest`, `trials[].near.km`), the attributes its value is found at from the
    top (`<name>` a mapping's key, `[]` a list's item), and its definition."""
    for key in keys:
        below = key.kind.members()
        if below is None:
            yield prefix + key.name, (*attributes, key.field), key
            continue
        infix, inner = below
        step = infix.strip(".")
        yield from walk(inner, prefix + key.name + infix, (*attributes, key.field, *filter(None, [step])))
