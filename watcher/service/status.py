"""What the service tells the world about itself: `trialwatch status`, and the one-line summary
systemd shows as STATUS=.

The running service writes its `meta` keys (`SERVICE_*` in `watcher.store.meta`); `trialwatch
status` (another process, maybe another user) only reads them, so it works whether the service
runs, has stopped, or has crashed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from watcher.config import Config
from watcher.errors import StorageError
from watcher.store import Store
from watcher.store.discovery import watched_trials
from watcher.store.meta import (
    CHANNEL_FAILING,
    SERVICE_CYCLE_STARTED,
    SERVICE_HEALTH,
    SERVICE_HEARTBEAT,
    SERVICE_NEXT_CYCLE,
    SERVICE_PID,
    SERVICE_STARTED,
    SERVICE_STATE,
    SERVICE_TRIALS,
    SERVICE_WATCHLIST_ERROR,
)
from watcher.times import minute, parse_utc, relative

HEARTBEAT_EVERY = timedelta(seconds=60)
STALE_AFTER = 3 * HEARTBEAT_EVERY


@dataclass(frozen=True, slots=True)
class FailingTrial:
    nct_id: str
    label: str | None
    consecutive_failures: int
    error: str | None
    not_found: bool


@dataclass(frozen=True, slots=True)
class FailingChannel:
    """A channel refusing every message since `failing_since` (`notify.failing.<name>`), one whose oldest
    message was refused (and waits for its retry), or one that has parked messages. `error` is the last
    refusal: it names the channel, never its URL or a secret. `others_told`: the other channels were
    alerted (after `notify.channel_failing_after`)."""

    channel: str
    pending: int
    parked: int
    attempts: int
    error: str | None
    next_attempt_at: str | None
    failing_since: str | None = None
    others_told: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    service: str  # running | stopping | stopped | not responding | never started
    pid: int | None
    started_at: str | None
    heartbeat: str | None
    health: str | None
    last_cycle: dict[str, Any] | None
    cycle_running_since: str | None
    next_cycle: str | None
    trials: int
    notifications: dict[str, int]
    failing: list[FailingTrial] = field(default_factory=list)
    failing_channels: list[FailingChannel] = field(default_factory=list)
    watchlist_error: list[str] | None = None
    service_trials: int | None = None  # what the running service watches (differs while an edit is rejected)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_status(config: Config, store: Store, *, now: datetime) -> Status:
    meta = store.meta
    state = meta.get(SERVICE_STATE)
    heartbeat = meta.get(SERVICE_HEARTBEAT)
    if state is None:
        service = "never started"
    elif state in ("running", "stopping") and (heartbeat is None or now - heartbeat > STALE_AFTER):
        service = "not responding"
    else:
        service = state
    last = store.cycles.last()
    last_cycle = None
    if last is not None:
        duration = (last.finished_at - last.started_at).total_seconds() if last.finished_at else None
        last_cycle = {
            "started_at": last.started_at.isoformat(),
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
            "result": last.result,
            "checked": last.checked,
            "changed": last.changed,
            "failed": last.failed,
            "requests": last.requests,
            "duration_s": round(duration, 3) if duration is not None else None,
        }
    counts = store.outbox.counts()
    states = store.trials.failing()
    failing = []
    for trial in config.watchlist.trials:
        st = states.get(trial.nct_id)
        if st is not None and st.consecutive_failures:
            failing.append(
                FailingTrial(trial.nct_id, trial.label, st.consecutive_failures, st.last_error, st.not_found)
            )
    error = meta.get(SERVICE_WATCHLIST_ERROR)
    running = service in ("running", "stopping")
    return Status(
        service=service,
        pid=meta.get(SERVICE_PID),
        started_at=_iso(meta.get(SERVICE_STARTED)),
        heartbeat=_iso(heartbeat),
        health=meta.get(SERVICE_HEALTH) if running else None,
        last_cycle=last_cycle,
        cycle_running_since=_iso(meta.get(SERVICE_CYCLE_STARTED)) if running else None,
        next_cycle=_iso(meta.get(SERVICE_NEXT_CYCLE)) if running else None,
        trials=watched_count(config, store),
        notifications={
            "pending": counts.get("pending", 0),
            "parked": counts.get("parked", 0),
            "sent": counts.get("sent", 0),
        },
        failing=failing,
        failing_channels=failing_channels(config, store),
        watchlist_error=error if running else None,
        service_trials=meta.get(SERVICE_TRIALS) if running else None,
    )


def failing_channels(config: Config, store: Store) -> list[FailingChannel]:
    """Channels refusing every message since their last acceptance, channels whose queue head was
    refused at least once, and channels with parked messages."""
    held = [name for name, c in config.settings.channels.items() if c.digest]
    by_channel = store.outbox.counts_by_channel()
    down = {name: d for name in config.settings.channels if (d := store.meta.get(CHANNEL_FAILING.of(name)))}
    found = []
    for queued in store.outbox.queued(held_channels=held):
        head = queued.head
        parked = by_channel.get(queued.channel, {}).get("parked", 0)
        refusing = down.get(queued.channel)
        if head is not None and ((head.attempts and head.last_error) or parked or refusing):
            found.append(
                FailingChannel(
                    queued.channel,
                    queued.count,
                    parked,
                    head.attempts,
                    head.last_error or (refusing.error if refusing else None),
                    _iso(queued.next_attempt_at),
                    _iso(refusing.since) if refusing else None,
                    refusing.alerted if refusing else False,
                )
            )
    listed = {f.channel for f in found}
    for channel in sorted(set(by_channel) | set(down)):
        parked = by_channel.get(channel, {}).get("parked", 0)
        refusing = down.get(channel)
        if channel not in listed and (parked or refusing):
            found.append(
                FailingChannel(
                    channel,
                    0,
                    parked,
                    0,
                    refusing.error if refusing else None,
                    None,
                    _iso(refusing.since) if refusing else None,
                    refusing.alerted if refusing else False,
                )
            )
    return found


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _hm(value: str | datetime | None) -> str:
    stamp = parse_utc(value) if isinstance(value, str) else value
    return minute(stamp) if stamp else "-"


def _ago(stamp: str | None, now: datetime) -> str:
    parsed = parse_utc(stamp)
    return relative(parsed, now) if parsed is not None else ""


def status_lines(status: Status, *, now: datetime) -> list[str]:
    """`trialwatch status` for people."""
    lines = []
    service = status.service
    if status.service in ("running", "stopping"):
        service += f" (pid {status.pid}, since {_hm(status.started_at)}, heartbeat {_ago(status.heartbeat, now)})"
        if status.health and status.health != "ok":
            service += f"; UNHEALTHY: {status.health}"
    lines.append(f"service:        {service}")
    cycle = status.last_cycle
    if cycle:
        lines.append(
            f"last cycle:     {_hm(cycle['finished_at'])}  {cycle['result']}  ({cycle['checked']} checked, "
            f"{cycle['changed']} changed, {cycle['failed']} failed, {cycle['requests']} requests, "
            f"{cycle['duration_s']}s)"
        )
    else:
        lines.append("last cycle:     none yet")
    if status.cycle_running_since:
        lines.append(f"running now:    a cycle started {_ago(status.cycle_running_since, now)}")
    nxt = status.next_cycle
    overdue = nxt is not None and (parsed := parse_utc(nxt)) is not None and parsed <= now
    lines.append(
        f"next cycle:     {_hm(nxt)} ({'due ' if overdue else ''}{_ago(nxt, now)})"
        if nxt
        else "next cycle:     - (the service is not running)"
    )
    failing = len(status.failing)
    lines.append(f"trials watched: {status.trials}" + (f" ({failing} failing)" if failing else ""))
    n = status.notifications
    lines.append(f"notifications:  {n['pending']} pending, {n['parked']} parked, {n['sent']} sent")
    for trial in status.failing:
        what = "not found (404)" if trial.not_found else (trial.error or "failed")
        lines.append(f"  failing  {trial.nct_id}  {trial.consecutive_failures} cycles: {what}")
    for channel in status.failing_channels:
        lines.append(f"  failing  channel {channel.channel!r}  {_channel_state(channel, now)}")
    if status.watchlist_error:
        kept = f" of {status.service_trials} trials" if status.service_trials is not None else ""
        lines.append(f"watchlist:      INVALID (a running service keeps its previous list{kept}):")
        lines.extend(f"  {problem}" for problem in status.watchlist_error)
    return lines


def _channel_state(channel: FailingChannel, now: datetime) -> str:
    parts = []
    if channel.failing_since:
        told = ", the other channels were told" if channel.others_told else ""
        parts.append(f"refusing since {_hm(channel.failing_since)} ({_ago(channel.failing_since, now)}{told})")
    if channel.pending:
        tried = f", tried {channel.attempts} time{'s' if channel.attempts != 1 else ''}" if channel.attempts else ""
        retry = f", next attempt {_hm(channel.next_attempt_at)}" if channel.next_attempt_at else ""
        parts.append(f"{channel.pending} pending{tried}{retry}")
    if channel.parked:
        parts.append(f"{channel.parked} parked (`trialwatch notify-retry` sends them again)")
    return "; ".join(parts) + (f": {channel.error}" if channel.error else "")


def watched_count(config: Config, store: Store) -> int:
    """Listed trials plus those `watch: true` searches added (the listed alone if the store cannot say)."""
    try:
        return len(watched_trials(config, store.discovery))
    except StorageError:
        return len(config.watchlist.trials)


def summary(trials: int, store: Store, *, next_cycle: datetime | None) -> str:
    """The STATUS= line: trials watched, last cycle, pending notifications."""
    last = store.cycles.last()
    counts = store.outbox.counts()
    parts = [f"{trials} trial{'s' if trials != 1 else ''} watched"]
    if last is not None and last.finished_at is not None:
        parts.append(
            f"last cycle {last.finished_at:%H:%M} UTC {last.result} ({last.checked} checked, "
            f"{last.changed} changed, {last.failed} failed)"
        )
    else:
        parts.append("no cycle yet")
    if next_cycle is not None:
        parts.append(f"next {next_cycle:%H:%M} UTC")
    pending, parked = counts.get("pending", 0), counts.get("parked", 0)
    parts.append(
        f"{pending} notification{'s' if pending != 1 else ''} pending" + (f", {parked} parked" if parked else "")
    )
    return "; ".join(parts)
