"""A `json://` or `jsons://` channel URL read as the webhook sender uses it (`watcher.notify.hook`).

apprise's documented JSON URL syntax — `json://[user:password@]host[:port]/path` with `+Header=value`
(a request header), `-name=value` (a query parameter), `:key=value` (an envelope key added, renamed
or dropped), `method=`, `verify=`, `cto=`/`rto=` — read by our own code, because these channels are
sent by our own code. Reading settings checks a JSON channel's URL with this same function, not with
apprise: what is checked is what will be sent with, and apprise, which imports every one of its
plugins to know their schemes, is not imported by a `check` whose channels are all webhooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from watcher.errors import NotifyError

METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE", "HEAD")


@dataclass(frozen=True, slots=True)
class HookTarget:
    """Where one JSON channel posts. `auth` and `headers` may hold secrets: repr shows neither."""

    url: str = field(repr=False)  # http(s)://host[:port]/path, no credentials
    method: str = "POST"
    auth: tuple[str, str] | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    params: Mapping[str, str] = field(default_factory=dict, repr=False)
    extras: Mapping[str, str] = field(default_factory=dict, repr=False)
    verify: bool = True
    connect_timeout: float | None = None
    read_timeout: float | None = None


def _arguments(query: str) -> list[tuple[str, str]]:
    """Query pairs decoded without turning `+` into a space: `+Header=…` keeps its plus."""
    pairs = []
    for piece in query.split("&"):
        if piece:
            key, _, value = piece.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def _seconds(value: str) -> float | None:
    try:
        return float(value) if float(value) > 0 else None
    except ValueError:
        return None


_PREFIXED = {"+": "headers", "-": "params", ":": "extras"}
"""apprise's argument prefixes: `+Header=value`, `-param=value`, `:key=value`."""


def _options(query: str) -> dict[str, Any]:
    """The URL's arguments as `HookTarget` fields (the prefixed ones, `method`, `verify`, `cto`, `rto`)."""
    found: dict[str, Any] = {"headers": {}, "params": {}, "extras": {}}
    for key, value in _arguments(query):
        if key[:1] in _PREFIXED and len(key) > 1:
            found[_PREFIXED[key[0]]][key[1:]] = value
        elif key == "method":
            if value.upper() not in METHODS:
                raise NotifyError(f"method={value!r} is not one of {', '.join(METHODS)}")
            found["method"] = value.upper()
        elif key == "verify":
            found["verify"] = value.lower() not in ("no", "false", "0", "off")
        elif key in ("cto", "rto"):
            found["connect_timeout" if key == "cto" else "read_timeout"] = _seconds(value)
    return found


def hook_target(url: str) -> HookTarget:
    """Read a json(s):// URL; NotifyError (naming no secret) when it cannot be one."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        raise NotifyError("the webhook URL cannot be read (check its host and port)") from None
    if split.scheme.lower() not in ("json", "jsons") or not split.hostname:
        raise NotifyError("a webhook URL is json://host/path or jsons://host/path")
    host = f"[{split.hostname}]" if ":" in split.hostname else split.hostname
    base = f"{'https' if split.scheme.lower() == 'jsons' else 'http'}://{host}{f':{port}' if port else ''}"
    auth = (unquote(split.username), unquote(split.password or "")) if split.username else None
    return HookTarget(url=base + (split.path or "/"), auth=auth, **_options(split.query))
