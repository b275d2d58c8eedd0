"""What kind of service an apprise URL is, and whether a channel's delivery options make sense.

The kind picks the message format (Slack mrkdwn, HTML email, Telegram HTML, a structured
JSON document, or plain text for every other apprise service). Checks return problems as
(key, message) pairs so that `config` can place them at the right file line, and never
quote a URL: it may hold a token.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watcher.config.secrets import redact_url

# apprise reports failures through its result object, which we log once, redacted; its own
# stdlib logger would print them again, unredacted (URLs it cannot parse, chat IDs, hosts).
_apprise_log = logging.getLogger("apprise")
_apprise_log.addHandler(logging.NullHandler())
_apprise_log.propagate = False

Kind = Literal["slack", "email", "telegram", "json", "text"]

_SCHEMES: dict[str, Kind] = {
    "slack": "slack",
    "mailto": "email",
    "mailtos": "email",
    "email": "email",
    "emails": "email",
    "tgram": "telegram",
    "telegram": "telegram",
    "json": "json",
    "jsons": "json",
}


def channel_kind(url: str) -> Kind:
    """The format family of an apprise URL; native `https://hooks.slack.com/…` counts as Slack."""
    try:
        split = urlsplit(url)
    except ValueError:
        return "text"
    scheme = split.scheme.lower()
    if scheme in ("http", "https"):
        host = (split.hostname or "").lower()
        if host.endswith("hooks.slack.com"):
            return "slack"
        if host == "api.telegram.org":
            return "telegram"
        return "text"
    return _SCHEMES.get(scheme, "text")


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    templates: tuple[str, ...]
    setup_url: str | None


@cache
def apprise_schemes() -> dict[str, Service]:
    """scheme → service, from apprise's public `Apprise().details()` (the plugins this install has)."""
    import apprise

    schemes: dict[str, Service] = {}
    for entry in apprise.Apprise().details().get("schemas", []):
        details = entry.get("details") or {}
        service = Service(
            name=str(entry.get("service_name") or "?"),
            templates=tuple(str(t) for t in details.get("templates") or ()),
            setup_url=entry.get("setup_url"),
        )
        for key in ("protocols", "secure_protocols"):
            found = entry.get(key) or ()
            for scheme in (found,) if isinstance(found, str) else found:
                schemes.setdefault(str(scheme).lower(), service)
    return schemes


def url_problem(url: str) -> str:
    """Why apprise rejects a URL: a missing or unknown scheme (with the close ones it knows), or a
    known scheme whose rest does not fit (with the shapes it expects). Never quotes the URL's secrets."""
    schemes = apprise_schemes()
    scheme, sep, _ = url.partition("://")
    if not sep:
        head = re.split(r"[:/]", url, maxsplit=1)[0].lower()
        close = _close(head, schemes) if head else []
        hint = (
            f"; did you mean {' or '.join(f'{c}://…' for c in close)}?"
            if close
            else " (such as mailto://, slack:// or json://)"
        )
        return f"the URL does not start with scheme://{hint}"
    scheme = scheme.lower()
    service = schemes.get(scheme)
    if service is None:
        close = _close(scheme, schemes)
        named = [f"{c}:// ({schemes[c].name})" if c in schemes else f"{c}://" for c in close]
        hint = (
            f"; close ones it knows: {', '.join(named)}"
            if close
            else "; the services and their schemes: https://appriseit.com/services/"
        )
        return f"apprise knows no scheme {scheme!r}{hint}"
    shapes = ", ".join(t.replace("{schema}", scheme) for t in service.templates[:3])
    more = f"; see {service.setup_url}" if service.setup_url else ""
    return (
        f"{scheme}:// is {service.name}, but the rest of the URL ({redact_url(url)}) does not fit it: "
        f"expected {shapes or 'another form'}{more}"
    )


def _close(word: str, schemes: dict[str, Service]) -> list[str]:
    """The closest known schemes; http(s) too, for a service's own address (https://hooks.slack.com/…)."""
    return difflib.get_close_matches(word, [*schemes, "http", "https"], n=3, cutoff=0.6)


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first time the cron expression fires strictly after `after`, in UTC-aware form.

    The expression is read in the channel's timezone, so `0 8 * * 1-5` means 08:00 local
    time on weekdays, summer or winter.
    """
    from croniter import croniter

    local = after.astimezone(zone(timezone))
    fire: datetime = croniter(cron, local).get_next(datetime)
    return fire.astimezone(UTC)  # a local time in a DST fold would not compare equal across zones


def check_channel_options(
    *,
    url: str,
    digest: str | None,
    timezone: str,
    heartbeat: timedelta | None,
    title_template: str | None,
    body_template: str | None,
    timeout: timedelta = timedelta(seconds=30),
) -> Iterator[tuple[str, str]]:
    """Problems with a channel's options, as (key, message); nothing when all is well."""
    import apprise

    if url and apprise.Apprise.instantiate(url) is None:
        yield "url", url_problem(url)
    try:
        zone(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        yield "timezone", f"{timezone!r} is not an IANA timezone such as UTC or Europe/Berlin"
        timezone = "UTC"
    if digest:
        from croniter import croniter

        if not croniter.is_valid(digest):
            yield "digest", f"{digest!r} is neither `immediate` nor a cron expression such as '0 8 * * 1-5'"
    if heartbeat is not None and heartbeat.total_seconds() < 60:
        yield "heartbeat", "must be at least 1m"
    if not timedelta(seconds=1) <= timeout <= timedelta(minutes=10):
        yield "timeout", "must be between 1s and 10m (it bounds each network wait of one send)"
    from watcher.config.templates import template_problem

    for key, source in (("title_template", title_template), ("body_template", body_template)):
        if source:
            problem = template_problem(source)
            if problem:
                yield key, problem
