"""Keep channel secrets (tokens, passwords, webhook paths) out of everything we print or store."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

_MIN_SECRET = 4


def secret_parts(url: str) -> set[str]:
    """Every piece of an apprise URL that may be a credential: user, password, path, query values."""
    parts: set[str] = {url}
    try:
        split = urlsplit(url)
    except ValueError:
        return parts
    for piece in (split.username, split.password):
        if piece:
            parts.update({piece, unquote(piece)})
    for segment in split.path.split("/"):
        if segment:
            parts.update({segment, unquote(segment)})
    for _, value in parse_qsl(split.query, keep_blank_values=False):
        parts.add(value)
    if split.netloc and "@" not in split.netloc and not re.match(r"^[\w.-]+(:\d+)?$", split.netloc):
        parts.add(split.netloc)
    return {p for p in parts if len(p) >= _MIN_SECRET}


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret (longest first, so a URL goes before its parts) with ***."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`url` without its `user:password@`, and that pair (decoded) when it had one: an HTTP URL's
    credentials travel as an `Authorization` header, never inside a URL that a log, an error, an
    alert or `doctor` may print."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return url, None
    if split.username is None and split.password is None:
        return url, None
    host = split.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{port}" if port else host
    bare = split._replace(netloc=netloc).geturl()
    return bare, (unquote(split.username or ""), unquote(split.password or ""))


def without_credentials(url: str) -> str:
    return split_credentials(url)[0]


def redact_url(url: str) -> str:
    """scheme://host/… with everything after the host hidden: enough to tell channels apart."""
    try:
        split = urlsplit(url)
    except ValueError:
        return "***"
    host = split.hostname or ""
    # Many apprise services put a token where a host would be (tgram://BOTID:TOKEN, slack://T…/B…,
    # ntfy://topic): only a name with a dot, or localhost, is shown as a host.
    if host and not (re.match(r"^[\w-]+(\.[\w-]+)+$", host) or host == "localhost"):
        host = ""
    tail = "/***" if (split.path.strip("/") or split.query or split.username) else ""
    return f"{split.scheme}://{host}{tail}" if host else f"{split.scheme}://***"
