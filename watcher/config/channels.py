"""A notification channel's settings, and what kind of service its apprise URL is.

The kind picks the message format (Slack mrkdwn, HTML email, Telegram HTML, a structured
JSON document, or plain text for every other apprise service). Problems never quote a URL:
it may hold a token.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watcher.config.hookurl import hook_target
from watcher.config.keys import Key, keys_of, names, read_keys, setting
from watcher.config.kinds import Duration, Nullable, Reading, SeverityLevel, Text, Texts, ValueKind
from watcher.config.registry import StudiesFilter
from watcher.config.secrets import redact_url
from watcher.config.substitute import substitute_credentials, substitute_env
from watcher.config.yamlbounds import short_repr
from watcher.detect.noedit import NOEDIT_KINDS
from watcher.detect.studies import StudyFilter
from watcher.errors import NotifyError
from watcher.models import Severity

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


@dataclass(frozen=True, slots=True)
class ChannelUrl(ValueKind[str]):
    """An apprise URL, with `${VAR}` from the environment and `${credential:NAME}` from systemd's credentials."""

    looked_up: ClassVar[bool] = True  # apprise imports every plugin to know its schemes

    @property
    def label(self) -> str:
        return "apprise URL"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: str, reading: Reading) -> str:
        validator, line = reading.validator, reading.validator.line_of(node, key)
        url, missing = substitute_env(validator.string(node, key, path) or "", reading.environ)
        for var in missing:
            validator.add(line, path, f"environment variable {var} is not set")
        url, credential_problems = substitute_credentials(url, reading.environ)
        for message in credential_problems:
            validator.add(line, path, message)
        return url

    def check(self, value: str, raw: Any) -> str | None:
        if not value:
            return None
        if channel_kind(value) == "json":  # sent by our own webhook code: checked by the reader it uses
            try:
                hook_target(value)
            except NotifyError as exc:
                return str(exc)
            return None
        import apprise

        return url_problem(value) if apprise.Apprise.instantiate(value) is None else None


@dataclass(frozen=True, slots=True)
class Cron(Text):
    """A crontab expression, or `immediate` (None)."""

    @property
    def label(self) -> str:
        return "`immediate` or a cron expression such as '0 8 * * 1-5'"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: Any, reading: Reading) -> Any:
        text = reading.validator.string(node, key, path)
        return None if text in ("immediate", "", None) else text

    def check(self, value: Any, raw: Any) -> str | None:
        from croniter import croniter

        if value and not croniter.is_valid(value):
            return f"{short_repr(value)} is neither `immediate` nor a cron expression such as '0 8 * * 1-5'"
        return None

    def show(self, value: Any) -> str:
        return "immediate" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class MinorSchedule(Text):
    """`immediate`, or a crontab expression for the digest that gathers minor-only change sets."""

    @property
    def label(self) -> str:
        return "`immediate` or a cron expression such as '0 8 * * *'"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: Any, reading: Reading) -> Any:
        text = reading.validator.string(node, key, path)
        return None if text in ("", None) else text

    def check(self, value: Any, raw: Any) -> str | None:
        from croniter import croniter

        if value and value != "immediate" and not croniter.is_valid(value):
            return f"{value!r} is neither `immediate` nor a cron expression such as '0 8 * * *'"
        return None

    def show(self, value: Any) -> str:
        return "by channel kind" if value is None else str(value)


MINOR_DIGEST_CRON = "0 8 * * *"
"""When a human channel gets the change sets that hold only minor changes, by default: one digest a day."""


@dataclass(frozen=True, slots=True)
class Timezone(Text):
    @property
    def label(self) -> str:
        return "IANA timezone"

    def check(self, value: Any, raw: Any) -> str | None:
        try:
            zone(value)
        except (ZoneInfoNotFoundError, ValueError):
            return f"{short_repr(value)} is not an IANA timezone such as UTC or Europe/Berlin"
        return None


@dataclass(frozen=True, slots=True)
class Template(Text):
    @property
    def label(self) -> str:
        return "Jinja2 template"

    def check(self, value: Any, raw: Any) -> str | None:
        from watcher.config.templates import template_problem

        return template_problem(value) if value else None


@dataclass(frozen=True, slots=True)
class NoEditKinds(ValueKind[tuple[str, ...]]):
    """`true` (every kind) or a list of kinds; absent or false: none."""

    @property
    def label(self) -> str:
        return f"true (all), or a list of: {', '.join(NOEDIT_KINDS)}"

    def read(
        self, node: Mapping[str, Any], key: str, path: str, default: tuple[str, ...], reading: Reading
    ) -> tuple[str, ...]:
        value = node[key]
        if value is None or value is False:
            return ()
        if value is True:
            return NOEDIT_KINDS
        kinds = reading.validator.strings(node, key, path)
        for bad in (k for k in kinds if k not in NOEDIT_KINDS):
            reading.validator.add(
                reading.validator.line_of(node, key),
                path,
                f"{short_repr(bad)} is not one of {', '.join(NOEDIT_KINDS)} (or true for all)",
            )
        return tuple(k for k in kinds if k in NOEDIT_KINDS)

    def show(self, value: tuple[str, ...]) -> str:
        return ", ".join(value) if value else "none (off)"


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """A notification channel, `channels.<name>`. `url` holds secrets: it is never printed (repr=False)."""

    name: str
    url: str = field(
        repr=False,
        metadata=setting(
            "any apprise URL; ${ENV_VAR} and ${credential:NAME} are substituted, so secrets stay out of the file",
            ChannelUrl(),
        ),
    )
    min_severity: Severity | None = field(
        default=None, metadata=setting("send only changes of this severity or higher", SeverityLevel())
    )
    only: tuple[str, ...] = field(default=(), metadata=setting("send only fields matching these globs", Texts()))
    ignore: tuple[str, ...] = field(default=(), metadata=setting("never send fields matching these globs", Texts()))
    tags: tuple[str, ...] = field(default=(), metadata=setting("also take every trial with one of these tags", Texts()))
    digest: str | None = field(
        default=None, metadata=setting("collect changes into one digest at the times of this cron expression", Cron())
    )
    minor: str | None = field(
        default=None,
        metadata=setting(
            "when a change set holding only minor changes (a geoPoint corrected, a date type turned ACTUAL) "
            f"is sent: `immediate`, or in a digest at the times of this cron expression; by default "
            f"'{MINOR_DIGEST_CRON}' (daily) on email, Slack, Telegram and other human channels, "
            "`immediate` on JSON webhooks; a channel with `digest` gathers everything anyway",
            MinorSchedule(),
        ),
    )
    timezone: str = field(
        default="UTC", metadata=setting("the timezone the digest's cron expression is read in", Timezone())
    )
    heartbeat: timedelta | None = field(
        default=None,
        metadata=setting(
            "send 'watching N trials; last successful poll at …' this often",
            Nullable(Duration(at_least=timedelta(minutes=1))),
        ),
    )
    title_template: str | None = field(
        default=None, metadata=setting("a template replacing the built-in title", Template())
    )
    body_template: str | None = field(
        default=None, metadata=setting("a template replacing the built-in body", Template())
    )
    no_edit: tuple[str, ...] = field(
        default=(),
        metadata=setting("the alerts that need no edit (results overdue …) this channel gets", NoEditKinds()),
    )
    timeout: timedelta = field(
        default=timedelta(seconds=30),
        metadata=setting(
            "how long any one network wait of a send may take: connecting, the SMTP greeting, each reply",
            Duration(
                at_least=timedelta(seconds=1),
                at_most=timedelta(minutes=10),
                why="it bounds each network wait of one send",
            ),
        ),
    )
    studies: StudyFilter | None = field(
        default=None,
        metadata=setting(
            "whole-registry mode: which studies not on the watchlist this channel hears of", StudiesFilter()
        ),
    )


CHANNEL_KEYS = names(keys_of(ChannelSettings))


def minor_schedule(channel: ChannelSettings) -> str | None:
    """The cron expression of the digest that gathers a channel's minor-only change sets; None when
    they are sent at once (a JSON webhook by default, `minor: immediate`, or a `digest` channel,
    whose digest gathers every change set anyway)."""
    if channel.digest:
        return None
    if channel.minor is not None:
        return None if channel.minor == "immediate" else channel.minor
    return None if channel_kind(channel.url) == "json" else MINOR_DIGEST_CRON


CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CHANNEL_NAME_MAX = 64
"""A channel's name is stored with each of its messages (and in a few bookkeeping keys): the database
holds at most 100 characters there, and logs, `status` and alerts quote it on one line."""


def channel_name_problem(name: object) -> str | None:
    """Why `name` cannot name a channel, or None."""
    text = str(name)
    if len(text) > CHANNEL_NAME_MAX:
        return f"a channel name has at most {CHANNEL_NAME_MAX} characters (this one has {len(text)})"
    if not isinstance(name, str) or not CHANNEL_NAME.fullmatch(text):
        shown = text if len(text) <= CHANNEL_NAME_MAX else text[:CHANNEL_NAME_MAX] + "…"
        return (
            f"{shown!r} is not a channel name: use letters, digits, '_', '-' and '.', starting with a letter or digit"
        )
    return None


@dataclass(frozen=True, slots=True)
class Channels(ValueKind[Mapping[str, ChannelSettings]]):
    """`channels:`, a mapping of channel name to its settings; a channel without a URL is not read further."""

    @property
    def label(self) -> str:
        return "mapping of name → channel"

    def read(
        self, node: Mapping[str, Any], key: str, path: str, default: Mapping[str, ChannelSettings], reading: Reading
    ) -> Mapping[str, ChannelSettings]:
        validator, keys = reading.validator, keys_of(ChannelSettings)
        channels_node = validator.mapping(node, key, path) or {}
        channels: dict[str, ChannelSettings] = {}
        for name, item in channels_node.items():
            where = f"{path}.{name}"
            if problem := channel_name_problem(name):
                validator.add(validator.line_of(channels_node, name), where, problem)
                continue
            if not isinstance(item, Mapping):
                validator.add(validator.line_of(channels_node, name), where, "expected a mapping with at least `url`")
                continue
            validator.unknown_keys(item, CHANNEL_KEYS, where)
            if not validator.string(item, "url", f"{where}.url"):
                validator.add(
                    validator.line_of(channels_node, name), f"{where}.url", "missing: an apprise URL is required"
                )
                continue
            url = ChannelUrl().read(item, "url", f"{where}.url", "", reading)
            values = read_keys(keys, item, where, reading, known={"url": url}, unknown_checked=True)
            channels[str(name)] = ChannelSettings(name=str(name), **values)
        return channels

    def members(self) -> tuple[str, tuple[Key, ...]]:
        return ".<name>.", keys_of(ChannelSettings)


def check_channel_options(**values: Any) -> Iterator[tuple[str, str]]:
    """Problems with the given options of one channel, as (key, message), from each key's kind."""
    for key in keys_of(ChannelSettings):
        value = values.get(key.field)
        if value is not None and (problem := key.kind.check(value, value)):
            yield key.name, problem
