"""JSON webhooks (`json://`, `jsons://`): apprise's envelope plus our document, POSTed with httpx.

apprise's JSON plugin can only add strings to its envelope (the documented `:key=value` URL
arguments); our document is nested, and joining it meant writing into a plugin object's
`payload_extras`. So these channels are sent here, reading apprise's documented json:// URL
syntax ourselves — `json://[user:password@]host[:port]/path` with `+Header=value` (a request
header), `-name=value` (a query parameter), `:key=value` (add an envelope key, or rename one of
apprise's keys to `value`; `:key=` drops it), `method=` and `verify=` — and POSTing the same body
apprise would: `{version: "1.0", title, message, attachments: [], type: "info"}` plus our fields.
Every request carries `Idempotency-Key: trialwatch-<installation id>-<message id>`, the same on each
retry and different for every installation (`idempotency_key`).
Redirects are never followed: a 301/302 would turn the POST into a bodyless GET whose 200 looks like
acceptance, and a 307/308 would carry the body and the secret `+Header`s to whatever host it names.
A 3xx is a refusal naming where it pointed, so the user can fix the URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from watcher import __version__
from watcher.config.hookurl import HookTarget
from watcher.errors import NotifyError
from watcher.models import Json

USER_AGENT = f"trialwatch/{__version__}"


def envelope(title: str, message: str, document: Mapping[str, Json], extras: Mapping[str, str]) -> dict[str, Any]:
    """apprise's JSON body (with its `:key` renames, drops and additions), then our document's fields."""
    payload: dict[str, Any] = {"version": "1.0", "title": title, "message": message, "attachments": [], "type": "info"}
    for key, value in extras.items():
        if key in payload:
            moved = payload.pop(key)
            if value:
                payload[value] = moved
        else:
            payload[key] = value
    payload.update({k: v for k, v in document.items() if k not in payload})
    return payload


def idempotency_key(installation: str | None, message_id: Json) -> str:
    """`trialwatch-<installation>-<message_id>`: outbox ids start at 1 in every database, so the
    installation's id (made once, kept in the database) tells two installations' message 42 apart."""
    return f"trialwatch-{installation}-{message_id}" if installation else f"trialwatch-{message_id}"


def post(
    target: HookTarget,
    payload: Mapping[str, Any],
    *,
    timeout: float,
    message_id: Json = None,
    installation: str | None = None,
) -> None:
    """Send one request; a 2xx answer is acceptance. Errors name no URL, header or credential."""
    import httpx

    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json", **target.headers}
    if message_id is not None:
        headers.setdefault("Idempotency-Key", idempotency_key(installation, message_id))
    limits = httpx.Timeout(timeout, connect=target.connect_timeout or timeout, read=target.read_timeout or timeout)
    try:
        with httpx.Client(timeout=limits, verify=target.verify, follow_redirects=False) as client:
            answer = client.request(
                target.method,
                target.url,
                content=json.dumps(payload).encode(),
                params=dict(target.params),
                headers=headers,
                auth=target.auth,
            )
    except httpx.TimeoutException:
        raise NotifyError(f"the webhook did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        host = urlsplit(target.url).hostname
        raise NotifyError(f"cannot reach the webhook at {host}: {type(exc).__name__}") from None
    if answer.is_redirect or 300 <= answer.status_code < 400:
        raise NotifyError(
            f"the webhook answered HTTP {answer.status_code} {answer.reason_phrase}, a redirect to "
            f"{_location_host(answer.headers.get('Location', ''), target.url)}: redirects are not followed "
            f"(set the channel's URL to where it points) (error={answer.status_code})"
        )
    if not 200 <= answer.status_code < 300:
        raise NotifyError(
            f"the webhook answered HTTP {answer.status_code} {answer.reason_phrase} (error={answer.status_code})"
        )


def _location_host(location: str, base: str) -> str:
    """The host (and port) a redirect names, never its path or query (they may hold a token)."""
    try:
        split = urlsplit(urljoin(base, location.strip()))
        port = split.port
    except ValueError:
        return "an unreadable Location"
    if not split.hostname:
        return "no Location"
    return f"{split.hostname}:{port}" if port else split.hostname
