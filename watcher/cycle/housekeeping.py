"""What follows a cycle: backfill of trials seen for the first time, retention, the Atom feeds, the
static site.

Each step is guarded on its own, so that one failing never skips another: a feed directory that
became unwritable must not stop retention, nor a backfill the registry refuses keep the feeds
stale. An expected failure (the registry, the database, the file system) is logged and left for
the next cycle; anything else is a bug: it is logged with its traceback and raised once every
step has had its turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from watcher.backfill import try_backfill
from watcher.config import Config
from watcher.errors import TrialWatchError
from watcher.registry.client import CtGovClient
from watcher.store import Store
from watcher.store.retention import apply_retention_daily

log = structlog.get_logger("watcher.cycle")


def run_housekeeping(
    config: Config, store: Store, client: CtGovClient, new_trials: Sequence[str], *, now: Callable[[], datetime]
) -> None:
    """Run every step; returns when all have run (raising the first bug, if one broke)."""
    steps: list[tuple[str, Callable[[], None]]] = [
        ("backfill", lambda: backfill_new(config, store, client, new_trials, now=now)),
        ("retention", lambda: retention(config, store, now=now())),
        ("feeds", lambda: feeds(config, store, now=now())),
        ("site", lambda: site(config, store, now=now())),
    ]
    bug: Exception | None = None
    for step, action in steps:
        try:
            action()
        except (TrialWatchError, OSError) as exc:
            log.warning("housekeeping.failed", step=step, error=str(exc))
        except Exception as exc:
            log.exception("housekeeping.crashed", step=step, error=f"{type(exc).__name__}: {exc}")
            bug = bug or exc
    if bug is not None:
        raise bug


def backfill_new(
    config: Config, store: Store, client: CtGovClient, new_trials: Sequence[str], *, now: Callable[[], datetime]
) -> None:
    """The history of trials stored for the first time this cycle (`backfill.on_add`); watchlist
    trials only (not a search's matches, nor the whole registry's)."""
    if not config.settings.backfill.on_add:
        return
    for nct_id in new_trials:
        if config.watchlist.get(nct_id) is not None:
            try_backfill(config, store, client, nct_id, now=now)


def retention(config: Config, store: Store, *, now: datetime) -> None:
    """`storage.keep_versions` / `keep_days`, applied at most daily (it scans every version)."""
    settings = config.settings
    result = apply_retention_daily(store, keep_versions=settings.keep_versions, keep_days=settings.keep_days, now=now)
    if result is not None:
        log.info(
            "retention.done",
            pruned=result.pruned,
            blobs_deleted=result.blobs_deleted,
            bytes_freed=result.bytes_freed,
            kept_for_outbox=result.kept_for_outbox,
        )


def feeds(config: Config, store: Store, *, now: datetime) -> None:
    """Rewrite the Atom feeds (`feeds.path`), when configured."""
    if config.settings.feeds.path is None:
        return
    from watcher.views.feeds import write_feeds

    written = write_feeds(config, store, now=now)
    log.info("feeds.written", files=[str(p) for p in written])


def site(config: Config, store: Store, *, now: datetime) -> None:
    """Rebuild the static site (`site.after_cycle`): the pages of trials with a new version, and the indexes."""
    settings = config.settings.site
    if not settings.after_cycle:
        return
    if settings.dir is None:
        log.warning("site.skipped", error="site.after_cycle is on but site.dir is not set")
        return
    from watcher.views.site import build_site

    report = build_site(config, store, settings.dir, now=now)
    log.info("site.built", dir=str(settings.dir), trials=report.trials_written, files=report.files_written)
