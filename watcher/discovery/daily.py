"""The daily check of alerts that need no edit, on each watched trial's latest stored version.

Once a UTC day (`meta` `NOEDIT_LAST_DAY`), after a complete cycle. A condition is announced once
per trial (`store.discovery`); when it stops holding (results posted, status verified, status
changed) it is forgotten, so it is announced again if it ever comes back. Only channels that
enabled the kind (`channels.<name>.no_edit`) get it; with none, nothing is evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from watcher.config import Config
from watcher.detect.noedit import conditions
from watcher.detect.record import title_of
from watcher.errors import TrialWatchError
from watcher.messages import NewMessage
from watcher.models import Json, Trial
from watcher.notify.discovery import noedit_messages
from watcher.store import Store
from watcher.store.meta import NOEDIT_LAST_DAY

log = structlog.get_logger("watcher.discovery")


def announce_no_edit_alerts(
    config: Config,
    store: Store,
    trials: Sequence[Trial],
    *,
    now: Callable[[], datetime],
    partial: bool = False,
    force: bool = False,
) -> int:
    """`check_no_edit_conditions`, whose failure is logged and retried next cycle: it never fails one."""
    try:
        return check_no_edit_conditions(config, store, trials, now=now, partial=partial, force=force)
    except TrialWatchError as exc:
        log.warning("noedit.failed", error=str(exc), error_type=type(exc).__name__)
        return 0


def check_no_edit_conditions(
    config: Config,
    store: Store,
    trials: Sequence[Trial],
    *,
    now: Callable[[], datetime],
    partial: bool = False,
    force: bool = False,
) -> int:
    """Evaluate the no-edit conditions when today's check has not run; returns the events raised.

    `partial`: the cycle polled only some trials, so the day's check waits for a complete one."""
    settings = config.settings
    wanted = {k for c in settings.channels.values() for k in c.no_edit}
    if not wanted or partial:
        return 0  # off by default: no channel asked for them (nor is anything printed without channels)
    at = now()
    today = at.date()
    if not force and store.meta.get(NOEDIT_LAST_DAY) == today:
        return 0
    sent: dict[str, set[str]] = {}
    for nct_id, kind in store.discovery.sent_conditions():
        sent.setdefault(nct_id, set()).add(kind)
    raised: dict[tuple[str, str], Json] = {}
    cleared: list[tuple[str, str]] = []
    messages: list[NewMessage] = []
    for trial in trials:
        latest = store.versions.latest(trial.nct_id)
        if latest is None:
            continue
        events = conditions(latest.record, today)
        holding = {e.kind for e in events}
        already = sent.get(trial.nct_id, set())
        cleared += [(trial.nct_id, k) for k in sorted(already - holding)]
        for event in events:
            if event.kind in already or event.kind not in wanted:
                continue
            messages += noedit_messages(trial, title_of(latest.record), event, settings, detected_at=at)
            raised[(trial.nct_id, event.kind)] = {"summary": event.summary, **dict(event.data)}
    store.discovery.record_conditions(raised, cleared, at=at, messages=messages)
    store.meta.set(NOEDIT_LAST_DAY, today)
    log.info(
        "noedit.checked",
        trials=len(trials),
        raised=len(raised),
        cleared=len(cleared),
        kinds=sorted({k for _, k in raised}),
    )
    return len(raised)
