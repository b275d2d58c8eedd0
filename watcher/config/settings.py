"""The settings file: its one definition (these dataclasses) and the reading of a file into them.

Every key is a field with `metadata=setting(doc, kind)` (`keys.py`): the field's default is the
key's default, its kind says what the key may be. Everything is validated up front and every
problem is reported at once, with file, line and key path, because a user fixing a config one
error per run gives up. The watchlist is read by `watchlist.py`; `load.py` loads both together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from watcher.config.channels import CHANNEL_KEYS, Channels, ChannelSettings
from watcher.config.keys import Section, keys_of, names, read_keys, setting
from watcher.config.kinds import (
    Choice,
    DatabaseUrl,
    Days,
    Duration,
    FilePath,
    Flag,
    HttpUrl,
    Integer,
    Nullable,
    Number,
    Reading,
    SeverityLevel,
    SeverityRules,
    Text,
    Texts,
)
from watcher.config.paths import default_database_url, default_state_dir
from watcher.config.registry import RegistrySettings
from watcher.config.searches import Search
from watcher.config.yamlcheck import Validator, kind, read_yaml
from watcher.errors import Problem
from watcher.models import Severity, Trial

__all__ = [
    "CHANNEL_KEYS",
    "TOP_KEYS",
    "ApiSettings",
    "BackfillSettings",
    "ChannelSettings",
    "Config",
    "FeedSettings",
    "Settings",
    "SiteSettings",
    "Watchlist",
    "WebSettings",
    "collect_settings",
]

_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """`api.*`: how ClinicalTrials.gov is reached. The defaults are for the public API (docs/explanation/polling.md)."""

    base_url: str = field(
        default="https://clinicaltrials.gov/api/v2",
        metadata=setting("ClinicalTrials.gov API v2, or a mirror of it", HttpUrl()),
    )
    timeout: float = field(default=30.0, metadata=setting("seconds to wait for one response", Number(at_least=0.1)))
    requests_per_second: float = field(
        default=0.8,  # 48/min, under the 50/min per IP that third parties report
        metadata=setting("one rate limit for every request; 0: unlimited (a local mirror or test server)", Number()),
    )
    max_concurrency: int = field(default=4, metadata=setting("requests in flight at once", Integer()))
    max_retries: int = field(
        default=5, metadata=setting("retries after the first attempt of a request", Integer(at_least=0))
    )
    batch_size: int = field(
        default=480,  # under 6 KB of URL with `,` unescaped (docs/explanation/polling.md)
        metadata=setting("NCT IDs per `filter.ids` request", Integer()),
    )
    full_page_size: int = field(
        default=1000, metadata=setting("full records per page (the API's maximum), read one at a time", Integer())
    )
    full_refetch_every: timedelta = field(
        default=timedelta(days=7), metadata=setting("how often every watched record is fetched in full", Duration())
    )
    strategy_threshold: int = field(
        default=2,
        metadata=setting(
            "try the registry-wide query once the `filter.ids` batches need this many requests", Integer()
        ),
    )
    backoff_base: float = field(
        default=1.0, metadata=setting("seconds; exponential backoff with full jitter starts here", Number())
    )
    backoff_max: float = field(default=60.0, metadata=setting("seconds; the longest backoff wait", Number()))
    retry_after_max: float = field(
        default=300.0, metadata=setting("seconds; a longer `Retry-After` is cut to this", Number())
    )


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """`feeds.*`: the Atom feeds written after each cycle (nothing is written without `path`)."""

    path: Path | None = field(
        default=None, metadata=setting("write the Atom feed of recent changes here after each cycle", FilePath())
    )
    per_tag: bool = field(
        default=True, metadata=setting("also write `<name>-<tag>.atom` beside it for every watchlist tag", Flag())
    )
    days: timedelta = field(default=timedelta(days=30), metadata=setting("how far back a feed reaches", Days()))
    max_entries: int = field(default=200, metadata=setting("the most entries one feed holds", Integer()))


@dataclass(frozen=True, slots=True)
class WebSettings:
    """`web.*`: where the read-only web view is published, so messages can link to its pages."""

    base_url: str | None = field(
        default=None,
        metadata=setting(
            "the web view's public address (e.g. https://trials.example.org); messages link to its trial pages",
            HttpUrl(),
        ),
    )
    host: str = field(
        default="127.0.0.1",
        metadata=setting("`trialwatch serve` listens here (0.0.0.0: every interface)", Text()),
    )
    port: int = field(default=8080, metadata=setting("`trialwatch serve` listens on this port", Integer()))
    base_path: str = field(
        default="/",
        metadata=setting("the path the view is served under, behind a proxy (e.g. /trials)", Text()),
    )


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """`site.*`: the static mirror site (`trialwatch site build`)."""

    dir: Path | None = field(
        default=None, metadata=setting("the folder `trialwatch site build` writes when given none", FilePath())
    )
    after_cycle: bool = field(
        default=False,
        metadata=setting("the service rebuilds the site in `site.dir` after each cycle (changed trials only)", Flag()),
    )


@dataclass(frozen=True, slots=True)
class BackfillSettings:
    """`backfill.*`: importing past versions from ClinicalTrials.gov's record history."""

    on_add: bool = field(default=False, metadata=setting("backfill a trial's history when it is first seen", Flag()))
    fill_gaps: str = field(
        default="auto",
        metadata=setting(
            "fetch the versions posted between two polls; auto: only when polling missed a daily refresh",
            Choice(("auto", "always", "never"), true="always", false="never"),
        ),
    )
    max_gap_requests: int = field(
        default=50,
        metadata=setting("history requests per cycle for gaps; trials beyond it are polled without", Integer(0)),
    )
    compare_links: bool = field(
        default=True,
        metadata=setting(
            "look up ClinicalTrials.gov's numbers of the two versions when a message summarises a list (one "
            "history request, counted in max_gap_requests), so that it links to their comparison",
            Flag(),
        ),
    )
    max_versions: int = field(default=64, metadata=setting("versions per trial and backfill", Integer()))
    max_bytes: int = field(
        default=4_000_000, metadata=setting("the largest record-history response read", Integer(at_least=1000))
    )
    base_url: str | None = field(
        default=None,
        metadata=setting(
            "where the record-history endpoints live", HttpUrl(), computed="api.base_url with /api/v2 → /api/int"
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The settings file; the fields' order is the order keys are read and listed in messages."""

    path: Path | None = None  # the file read; None: the built-in defaults
    api: ApiSettings = field(
        default_factory=ApiSettings, metadata=setting("how ClinicalTrials.gov is reached", Section(ApiSettings))
    )
    storage_url: str = field(
        metadata=setting(
            "any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db",
            DatabaseUrl(),
            key="storage.url",
            computed="sqlite:///<state_dir>/trialwatch.sqlite",
        )
    )
    keep_versions: int | None = field(
        default=None,
        metadata=setting(
            "keep each trial's newest N full records; older ones are pruned (their changes stay)",
            Nullable(Integer()),
            key="storage.keep_versions",
        ),
    )
    keep_days: timedelta | None = field(
        default=None,
        metadata=setting(
            "keep full records fetched in the last N days; with both set, a version goes only when outside both",
            Nullable(Days()),
            key="storage.keep_days",
        ),
    )
    interval: timedelta = field(
        default=timedelta(hours=6),
        metadata=setting("how often every trial is polled", Duration(longer_than=_ZERO), key="schedule.interval"),
    )
    jitter: timedelta = field(
        default=_ZERO, metadata=setting("a random delay added to each poll", Duration(), key="schedule.jitter")
    )
    run_at_start: bool = field(
        default=True,
        metadata=setting("poll as soon as the service starts", Flag(), key="schedule.run_at_start"),
    )
    notify_interval: timedelta = field(
        default=timedelta(seconds=30),
        metadata=setting(
            "how often the service delivers what the outbox owes (retries included), besides after each cycle",
            Duration(longer_than=_ZERO),
            key="schedule.notify_interval",
        ),
    )
    watch_interval: timedelta = field(
        default=timedelta(seconds=2),
        metadata=setting(
            "how often the service looks at the watchlist for edits; 0s: only on SIGHUP",
            Duration(),
            key="schedule.watch_interval",
        ),
    )
    stop_timeout: timedelta = field(
        default=timedelta(seconds=30),
        metadata=setting(
            "on SIGTERM, how long the cycle in flight may take to finish before it is abandoned",
            Duration(),
            key="schedule.stop_timeout",
        ),
    )
    cycle_timeout: timedelta = field(
        default=timedelta(hours=1),
        metadata=setting(
            "a cycle running longer is stuck: the systemd watchdog is no longer fed",
            Duration(),
            key="schedule.cycle_timeout",
        ),
    )
    api_retry: timedelta = field(
        default=timedelta(minutes=1),
        metadata=setting(
            "after a cycle failed at the API level, poll again this soon (doubling, up to the interval); 0s: never",
            Duration(),
            key="schedule.api_retry",
        ),
    )
    channels: Mapping[str, ChannelSettings] = field(
        default_factory=dict, metadata=setting("where notifications go, by channel name", Channels())
    )
    notify_baseline: bool = field(
        default=False,
        metadata=setting(
            "notify the first snapshot of a trial (normally only recorded)", Flag(), key="notify.baseline"
        ),
    )
    min_severity: Severity | None = field(
        default=None,
        metadata=setting(
            "every channel: only changes of this severity or higher", SeverityLevel(), key="notify.min_severity"
        ),
    )
    only: tuple[str, ...] = field(
        default=(), metadata=setting("every channel: only fields matching these globs", Texts(), key="notify.only")
    )
    ignore: tuple[str, ...] = field(
        default=(), metadata=setting("every channel: never fields matching these globs", Texts(), key="notify.ignore")
    )
    include_bookkeeping: bool = field(
        default=False,
        metadata=setting(
            "also notify bookkeeping fields (last-update dates, derivedSection)",
            Flag(),
            key="notify.include_bookkeeping",
        ),
    )
    failure_alert_after: int = field(
        default=3,
        metadata=setting(
            "alert after this many failed cycles in a row (per trial, and for the API)",
            Integer(),
            key="notify.failure_alert_after",
        ),
    )
    max_attempts: int = field(
        default=20,
        metadata=setting("a message refused this many times is parked", Integer(), key="notify.max_attempts"),
    )
    claim_timeout: timedelta = field(
        default=timedelta(minutes=5),
        metadata=setting(
            "a message claimed for sending this long ago is sent again by the next process",
            Duration(),
            key="notify.claim_timeout",
        ),
    )
    channel_failing_after: timedelta = field(
        default=timedelta(minutes=30),
        metadata=setting(
            "alert the other channels once a channel has refused every message this long (and when it recovers)",
            Duration(),
            key="notify.channel_failing_after",
        ),
    )
    delay_note_after: timedelta = field(
        default=timedelta(minutes=15),
        metadata=setting("a message delivered this late says so", Duration(), key="notify.delay_note_after"),
    )
    severity_rules: Mapping[str, Severity] = field(
        default_factory=dict,
        metadata=setting("override the severity of changes to matching fields", SeverityRules(), key="severity"),
    )
    watchlist_path: Path = field(
        default=Path("watchlist.yaml"),
        metadata=setting("the watchlist file", FilePath(), key="watchlist"),
    )
    state_dir: Path = field(
        metadata=setting(
            "where the default SQLite database and the service's state live",
            FilePath(),
            computed="$STATE_DIRECTORY, else $XDG_STATE_HOME/trialwatch, else ~/.local/state/trialwatch",
        )
    )
    registry: RegistrySettings = field(
        default_factory=RegistrySettings,
        metadata=setting("whole-registry mode", Section(RegistrySettings)),
    )
    feeds: FeedSettings = field(
        default_factory=FeedSettings, metadata=setting("Atom feeds of recent changes", Section(FeedSettings))
    )
    backfill: BackfillSettings = field(
        default_factory=BackfillSettings,
        metadata=setting("past versions from the record history", Section(BackfillSettings)),
    )
    web: WebSettings = field(
        default_factory=WebSettings, metadata=setting("the read-only web view", Section(WebSettings))
    )
    site: SiteSettings = field(
        default_factory=SiteSettings, metadata=setting("the static mirror site", Section(SiteSettings))
    )


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


TOP_KEYS = names(keys_of(Settings))


def _settings_from(doc: Any, path: Path | None, reading: Reading) -> Settings:
    validator = reading.validator
    root = doc if isinstance(doc, Mapping) else {}
    if doc is not None and not isinstance(doc, Mapping):
        validator.add(1, "", f"expected a mapping of settings, got {kind(doc)}")
    values = read_keys(keys_of(Settings), root, "", reading)
    state_dir = values.setdefault("state_dir", default_state_dir(reading.environ))
    values.setdefault("storage_url", default_database_url(state_dir))
    settings = Settings(path=path, **values)
    for name, channel in settings.channels.items():
        if channel.studies is not None and not settings.registry.all:
            validator.add(
                validator.line_of(root["channels"][name], "studies"),
                f"channels.{name}.studies",
                "only used when the whole registry is watched: set `registry: {all: true}`",
            )
    return settings


def collect_settings(
    path: Path | None, environ: Mapping[str, str], *, look_up: bool = True
) -> tuple[Settings, list[Problem]]:
    """The settings and every problem found; `load.load_settings` raises them. `look_up`: see `Reading`."""
    validator = Validator(path or "<defaults>")
    doc = read_yaml(path, validator) if path else None
    reading = Reading(validator, path.parent if path else Path.cwd(), environ, look_up=look_up)
    return _settings_from(doc, path, reading), validator.problems
