"""The settings file as frozen dataclasses, and the parsing of the file into them.

Everything is validated up front and every problem is reported at once, with file, line
and key path, because a user fixing a config one error per run gives up. The watchlist is
read by `watchlist.py`; `load.py` loads both together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from watcher.config.paths import default_state_dir
from watcher.config.registry import RegistrySettings, registry_from, study_filter_from
from watcher.config.searches import Search
from watcher.config.substitute import substitute_credentials, substitute_env
from watcher.config.yamlcheck import Checker, kind, read_yaml
from watcher.detect.studies import StudyFilter
from watcher.errors import Problem
from watcher.models import Severity, Trial


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The `api.*` settings. Defaults are for the public API; the README's polling section gives the reasons."""

    base_url: str = "https://clinicaltrials.gov/api/v2"
    timeout: float = 30.0
    requests_per_second: float = 0.8  # 48/min, under the reported 50/min per IP; 0 = unlimited (a local mirror)
    max_concurrency: int = 4
    max_retries: int = 5  # retries after the first attempt
    batch_size: int = 480  # IDs per filter.ids request: under 6 KB of URL with `,` unescaped (README)
    full_page_size: int = 1000  # full records per page (the API's maximum), read one at a time
    full_refetch_every: timedelta = timedelta(days=7)
    strategy_threshold: int = 2  # try the registry-wide query once filter.ids needs this many requests
    backoff_base: float = 1.0  # seconds; exponential backoff with full jitter from here
    backoff_max: float = 60.0
    retry_after_max: float = 300.0  # a Retry-After beyond this is capped


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """A notification channel. `url` holds secrets: it is never printed (repr=False)."""

    name: str
    url: str = field(repr=False)
    min_severity: Severity | None = None
    only: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    digest: str | None = None  # a cron expression; None sends each change set at once
    timezone: str = "UTC"
    heartbeat: timedelta | None = None
    title_template: str | None = None
    body_template: str | None = None
    no_edit: tuple[str, ...] = ()  # no-edit alert kinds this channel wants (watcher/detect/noedit.py); off by default
    timeout: timedelta = timedelta(seconds=30)  # bounds each network wait of one send (watcher.notify.send)
    studies: StudyFilter | None = None  # whole-registry mode: which unlisted studies this channel hears of


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """`feeds.*`: the Atom feeds written after each cycle (nothing is written without `path`)."""

    path: Path | None = None
    per_tag: bool = True
    days: timedelta = timedelta(days=30)
    max_entries: int = 200


@dataclass(frozen=True, slots=True)
class BackfillSettings:
    """`backfill.*`: importing past versions from ClinicalTrials.gov's record history."""

    on_add: bool = False  # backfill a trial's history when it is first seen
    fill_gaps: str = "auto"  # auto | always | never: fetch versions posted between two polls
    max_gap_requests: int = 50  # per cycle, across trials; the rest are polled without gap-filling
    max_versions: int = 64  # per trial and backfill
    max_bytes: int = 4_000_000  # per history response
    base_url: str | None = None  # default: api.base_url with /api/v2 → /api/int


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path | None
    api: ApiSettings
    storage_url: str
    state_dir: Path
    interval: timedelta
    jitter: timedelta
    run_at_start: bool
    channels: Mapping[str, ChannelSettings]
    watchlist_path: Path
    # the service (`trialwatch run`)
    notify_interval: timedelta = timedelta(seconds=30)
    watch_interval: timedelta = timedelta(seconds=2)
    stop_timeout: timedelta = timedelta(seconds=30)
    cycle_timeout: timedelta = timedelta(hours=1)
    api_retry: timedelta = timedelta(minutes=1)  # first retry after an API-level failed cycle; 0: none
    notify_baseline: bool = False
    min_severity: Severity | None = None
    ignore: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    include_bookkeeping: bool = False
    # history and storage: `storage.keep_*`, `feeds.*`, `backfill.*`
    keep_versions: int | None = None
    keep_days: timedelta | None = None
    feeds: FeedSettings = field(default_factory=FeedSettings)
    backfill: BackfillSettings = field(default_factory=BackfillSettings)
    severity_rules: Mapping[str, Severity] = field(default_factory=dict)
    failure_alert_after: int = 3
    max_attempts: int = 20
    claim_timeout: timedelta = timedelta(minutes=5)
    delay_note_after: timedelta = timedelta(minutes=15)
    registry: RegistrySettings = field(default_factory=RegistrySettings)


@dataclass(frozen=True, slots=True)
class Watchlist:
    path: Path
    trials: tuple[Trial, ...]
    searches: tuple[Search, ...] = ()  # `searches:` (watcher/config/searches.py)

    def get(self, nct_id: str) -> Trial | None:
        return next((t for t in self.trials if t.nct_id == nct_id), None)


@dataclass(frozen=True, slots=True)
class Config:
    settings: Settings
    watchlist: Watchlist


# -- settings ------------------------------------------------------------------------------------

TOP_KEYS = ("api", "storage", "schedule", "channels", "notify", "severity", "watchlist", "state_dir", "registry")
CHANNEL_KEYS = (
    "url",
    "min_severity",
    "only",
    "ignore",
    "tags",
    "digest",
    "timezone",
    "heartbeat",
    "title_template",
    "body_template",
    "no_edit",
    "timeout",
    "studies",
)


def _api_settings(node: Mapping[str, Any], checker: Checker) -> ApiSettings:
    """Every ApiSettings field is a settings key `api.<field>`, typed by its default."""
    defaults = ApiSettings()
    names = [f.name for f in fields(ApiSettings)]
    checker.unknown_keys(node, names, "api")
    values: dict[str, Any] = {}
    for name in names:
        if name not in node:
            continue
        default, path = getattr(defaults, name), f"api.{name}"
        if isinstance(default, timedelta):
            values[name] = checker.duration(node, name, path, f"{int(default.total_seconds())}s")
        elif isinstance(default, str):
            text = checker.string(node, name, path, default) or default
            if name == "base_url":
                if not re.match(r"^https?://", text):
                    checker.add(checker.line_of(node, name), path, f"{text!r} is not an http(s) URL")
                text = text.rstrip("/")
            values[name] = text
        elif isinstance(default, int) and not isinstance(default, bool):
            values[name] = int(checker.number(node, name, path, default, minimum=0 if name == "max_retries" else 1))
        else:
            values[name] = checker.number(node, name, path, default, minimum=0.1 if name == "timeout" else 0)
    return replace(defaults, **values)


def _settings_from(doc: Any, path: Path | None, checker: Checker, environ: Mapping[str, str]) -> Settings:
    root = doc if isinstance(doc, Mapping) else {}
    if doc is not None and not isinstance(doc, Mapping):
        checker.add(1, "", f"expected a mapping of settings, got {kind(doc)}")
    checker.unknown_keys(root, (*TOP_KEYS, *HISTORY_KEYS), "")
    base_dir = path.parent if path else Path.cwd()

    state_text = checker.string(root, "state_dir", "state_dir")
    state_dir = (base_dir / state_text) if state_text else default_state_dir(environ)

    api_node = checker.mapping(root, "api", "api") or {}
    api = _api_settings(api_node, checker)

    storage = checker.mapping(root, "storage", "storage") or {}
    checker.unknown_keys(storage, ("url", "keep_versions", "keep_days"), "storage")
    storage_url = checker.string(storage, "url", "storage.url") or f"sqlite:///{state_dir / 'trialwatch.sqlite'}"
    if "://" not in storage_url:
        checker.add(
            checker.line_of(storage, "url"),
            "storage.url",
            f"{storage_url!r} is not an SQLAlchemy URL such as sqlite:///path or postgresql+psycopg://…",
        )

    schedule = checker.mapping(root, "schedule", "schedule") or {}
    checker.unknown_keys(
        schedule,
        (
            "interval",
            "jitter",
            "run_at_start",
            "notify_interval",
            "watch_interval",
            "stop_timeout",
            "cycle_timeout",
            "api_retry",
        ),
        "schedule",
    )
    interval = checker.duration(schedule, "interval", "schedule.interval", "6h")
    jitter = checker.duration(schedule, "jitter", "schedule.jitter", "0s") if "jitter" in schedule else timedelta()
    run_at_start = checker.boolean(schedule, "run_at_start", "schedule.run_at_start", True)
    notify_interval = checker.duration(schedule, "notify_interval", "schedule.notify_interval", "30s")
    watch_interval = checker.duration(schedule, "watch_interval", "schedule.watch_interval", "2s")
    stop_timeout = checker.duration(schedule, "stop_timeout", "schedule.stop_timeout", "30s")
    cycle_timeout = checker.duration(schedule, "cycle_timeout", "schedule.cycle_timeout", "1h")
    api_retry = checker.duration(schedule, "api_retry", "schedule.api_retry", "1m")
    for key, value in (("interval", interval), ("notify_interval", notify_interval)):
        if not value:
            checker.add(checker.line_of(schedule, key), f"schedule.{key}", "must be longer than 0s")

    channels: dict[str, ChannelSettings] = {}
    channels_node = checker.mapping(root, "channels", "channels") or {}
    for name, node in channels_node.items():
        cpath = f"channels.{name}"
        if not isinstance(node, Mapping):
            checker.add(checker.line_of(channels_node, name), cpath, "expected a mapping with at least `url`")
            continue
        checker.unknown_keys(node, CHANNEL_KEYS, cpath)
        raw_url = checker.string(node, "url", f"{cpath}.url")
        if not raw_url:
            checker.add(checker.line_of(channels_node, name), f"{cpath}.url", "missing: an apprise URL is required")
            continue
        url, missing = substitute_env(raw_url, environ)
        for var in missing:
            checker.add(checker.line_of(node, "url"), f"{cpath}.url", f"environment variable {var} is not set")
        url, credential_problems = substitute_credentials(url, environ)
        for message in credential_problems:
            checker.add(checker.line_of(node, "url"), f"{cpath}.url", message)
        channels[str(name)] = ChannelSettings(
            name=str(name),
            url=url,
            min_severity=checker.severity(node, "min_severity", f"{cpath}.min_severity"),
            only=checker.strings(node, "only", f"{cpath}.only"),
            ignore=checker.strings(node, "ignore", f"{cpath}.ignore"),
            tags=checker.strings(node, "tags", f"{cpath}.tags"),
            no_edit=_no_edit_kinds(checker, node, cpath),
            studies=study_filter_from(node, checker, cpath),
            **_delivery_options(checker, node, cpath, url),
        )

    notify = checker.mapping(root, "notify", "notify") or {}
    checker.unknown_keys(
        notify,
        (
            "baseline",
            "min_severity",
            "only",
            "ignore",
            "include_bookkeeping",
            "failure_alert_after",
            "max_attempts",
            "claim_timeout",
            "delay_note_after",
        ),
        "notify",
    )

    rules: dict[str, Severity] = {}
    rules_node = checker.mapping(root, "severity", "severity") or {}
    for glob in rules_node:
        sev = checker.severity(rules_node, glob, f"severity.{glob}")
        if sev:
            rules[str(glob)] = sev

    keep_versions = (
        int(checker.number(storage, "keep_versions", "storage.keep_versions", 0, minimum=1))
        if storage.get("keep_versions") is not None
        else None
    )
    keep_days = (
        timedelta(days=checker.number(storage, "keep_days", "storage.keep_days", 0, minimum=1))
        if storage.get("keep_days") is not None
        else None
    )
    feeds, backfill = _feeds_from(root, checker, base_dir), _backfill_from(root, checker)

    watchlist_text = checker.string(root, "watchlist", "watchlist") or "watchlist.yaml"
    registry = registry_from(root, checker)
    for name, channel in channels.items():
        if channel.studies is not None and not registry.all:
            checker.add(
                checker.line_of(channels_node[name], "studies"),
                f"channels.{name}.studies",
                "only used when the whole registry is watched: set `registry: {all: true}`",
            )
    return Settings(
        path=path,
        api=api,
        storage_url=storage_url,
        state_dir=state_dir,
        interval=interval,
        jitter=jitter,
        run_at_start=run_at_start,
        channels=channels,
        watchlist_path=(base_dir / watchlist_text),
        notify_interval=notify_interval,
        watch_interval=watch_interval,
        stop_timeout=stop_timeout,
        cycle_timeout=cycle_timeout,
        api_retry=api_retry,
        notify_baseline=checker.boolean(notify, "baseline", "notify.baseline", False),
        min_severity=checker.severity(notify, "min_severity", "notify.min_severity"),
        ignore=checker.strings(notify, "ignore", "notify.ignore"),
        only=checker.strings(notify, "only", "notify.only"),
        include_bookkeeping=checker.boolean(notify, "include_bookkeeping", "notify.include_bookkeeping", False),
        keep_versions=keep_versions,
        keep_days=keep_days,
        feeds=feeds,
        backfill=backfill,
        severity_rules=rules,
        failure_alert_after=int(checker.number(notify, "failure_alert_after", "notify.failure_alert_after", 3, 1)),
        max_attempts=int(checker.number(notify, "max_attempts", "notify.max_attempts", 20, 1)),
        claim_timeout=checker.duration(notify, "claim_timeout", "notify.claim_timeout", "5m"),
        delay_note_after=checker.duration(notify, "delay_note_after", "notify.delay_note_after", "15m"),
        registry=registry,
    )


def _no_edit_kinds(checker: Checker, node: Mapping[str, Any], cpath: str) -> tuple[str, ...]:
    """`no_edit: true` (every kind) or a list of kinds; absent or false: none (they are off by default)."""
    from watcher.detect.noedit import NOEDIT_KINDS

    value = node.get("no_edit")
    if value is None or value is False:
        return ()
    if value is True:
        return NOEDIT_KINDS
    kinds = checker.strings(node, "no_edit", f"{cpath}.no_edit")
    for bad in (k for k in kinds if k not in NOEDIT_KINDS):
        checker.add(
            checker.line_of(node, "no_edit"),
            f"{cpath}.no_edit",
            f"{bad!r} is not one of {', '.join(NOEDIT_KINDS)} (or true for all)",
        )
    return tuple(k for k in kinds if k in NOEDIT_KINDS)


def _delivery_options(checker: Checker, node: Mapping[str, Any], cpath: str, url: str) -> dict[str, Any]:
    """A channel's digest, heartbeat and template keys; the checks live with their owners."""
    from watcher.config.channels import check_channel_options

    options: dict[str, Any] = {
        "digest": checker.string(node, "digest", f"{cpath}.digest"),
        "timezone": checker.string(node, "timezone", f"{cpath}.timezone", "UTC") or "UTC",
        "heartbeat": (
            checker.duration(node, "heartbeat", f"{cpath}.heartbeat", "1d")
            if node.get("heartbeat") is not None
            else None
        ),
        "title_template": checker.string(node, "title_template", f"{cpath}.title_template"),
        "body_template": checker.string(node, "body_template", f"{cpath}.body_template"),
        "timeout": checker.duration(node, "timeout", f"{cpath}.timeout", "30s"),
    }
    if options["digest"] in ("immediate", ""):
        options["digest"] = None
    for key, message in check_channel_options(url=url, **options):
        checker.add(checker.line_of(node, key if key in node else None), f"{cpath}.{key}", message)
    return options


def collect_settings(path: Path | None, environ: Mapping[str, str]) -> tuple[Settings, list[Problem]]:
    """The settings and every problem found; `load.load_settings` raises them."""
    checker = Checker(path or "<defaults>")
    doc = read_yaml(path, checker) if path else None
    return _settings_from(doc, path, checker, environ), checker.problems


# -- history and storage settings (`feeds.*`, `backfill.*`; `storage.keep_*` are read with `storage.url`)

HISTORY_KEYS = ("feeds", "backfill")  # top-level sections beside TOP_KEYS


def _feeds_from(root: Mapping[str, Any], checker: Checker, base_dir: Path) -> FeedSettings:
    node = checker.mapping(root, "feeds", "feeds") or {}
    checker.unknown_keys(node, ("path", "per_tag", "days", "max_entries"), "feeds")
    defaults = FeedSettings()
    path = checker.string(node, "path", "feeds.path")
    return FeedSettings(
        path=(base_dir / path) if path else None,
        per_tag=checker.boolean(node, "per_tag", "feeds.per_tag", defaults.per_tag),
        days=timedelta(days=checker.number(node, "days", "feeds.days", defaults.days.days, minimum=1)),
        max_entries=int(checker.number(node, "max_entries", "feeds.max_entries", defaults.max_entries, 1)),
    )


_FILL_GAPS = ("auto", "always", "never")


def _backfill_from(root: Mapping[str, Any], checker: Checker) -> BackfillSettings:
    node = checker.mapping(root, "backfill", "backfill") or {}
    checker.unknown_keys(
        node, ("on_add", "fill_gaps", "max_gap_requests", "max_versions", "max_bytes", "base_url"), "backfill"
    )
    d = BackfillSettings()
    fill_gaps = node.get("fill_gaps", d.fill_gaps)
    if isinstance(fill_gaps, bool):  # YAML reads `never`-ish words fine, but `false`/`true` as booleans
        fill_gaps = "always" if fill_gaps else "never"
    if fill_gaps not in _FILL_GAPS:
        checker.add(
            checker.line_of(node, "fill_gaps"),
            "backfill.fill_gaps",
            f"{fill_gaps!r} is not one of {', '.join(_FILL_GAPS)}",
        )
        fill_gaps = d.fill_gaps
    base_url = checker.string(node, "base_url", "backfill.base_url")
    if base_url and not re.match(r"^https?://", base_url):
        checker.add(checker.line_of(node, "base_url"), "backfill.base_url", f"{base_url!r} is not an http(s) URL")
        base_url = None
    return BackfillSettings(
        on_add=checker.boolean(node, "on_add", "backfill.on_add", d.on_add),
        fill_gaps=str(fill_gaps),
        max_gap_requests=int(checker.number(node, "max_gap_requests", "backfill.max_gap_requests", d.max_gap_requests)),
        max_versions=int(checker.number(node, "max_versions", "backfill.max_versions", d.max_versions, 1)),
        max_bytes=int(checker.number(node, "max_bytes", "backfill.max_bytes", d.max_bytes, 1000)),
        base_url=base_url.rstrip("/") if base_url else None,
    )


def iter_channels(settings: Settings) -> Iterator[ChannelSettings]:
    yield from settings.channels.values()
