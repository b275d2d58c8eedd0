"""Send everything due before a one-shot command exits, and say what stays queued and why.

The service sends on a timer, so a notify tick waits a few seconds at most for its channels
(`watcher.notify.delivery.TICK_WAIT`) and leaves the rest to the next tick. `trialwatch check`
has no next tick: under cron the next run may be hours away, and a worker thread cut off at exit
mid-send could send its message twice. So `check` drains: it joins every channel's worker, round
after round, until no channel has a message due. That ends: each send is bounded by its channel's
`timeout`, and a channel that refuses or times out has its head rescheduled (backoff), which holds
back that channel alone while the others go on in their own threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from watcher.config import Config, Settings
from watcher.config.channels import next_fire
from watcher.notify.delivery import Outcome, deliver_due
from watcher.notify.payloads import notify_tick
from watcher.notify.send import Sender
from watcher.store import Store
from watcher.store.meta import DIGEST_LAST, installation_id
from watcher.store.outbox import Queued
from watcher.times import minute, utc

MAX_DRAIN_ROUNDS = 100
"""Rounds of `deliver_due` at most (each sends up to `MAX_ROUNDS` per channel): a backstop only."""


@dataclass(frozen=True, slots=True)
class Drained:
    """What a drain sent, and what it leaves in the outbox."""

    outcomes: list[Outcome] = field(default_factory=list)
    queued: list[Queued] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """One line per channel with messages left behind, saying why (for stderr)."""


def drain(config: Config, store: Store, *, now: Callable[[], datetime], sender: Sender | None = None) -> Drained:
    """Digests and heartbeats that are due, then every due message, each channel to its end."""
    settings = config.settings
    if not settings.channels:
        return Drained()
    sender = sender or Sender(settings.channels, installation=installation_id(store.meta))
    outcomes = notify_tick(config, store, now=now, sender=sender, wait=None)
    for _ in range(MAX_DRAIN_ROUNDS):
        sent = deliver_due(store, settings, now=now, sender=sender, wait=None)
        if not sent:
            break
        outcomes.extend(sent)
    held = [name for name, c in settings.channels.items() if c.digest]
    queued = store.outbox.queued(held_channels=held)
    return Drained(outcomes, queued, [queued_note(q, settings, store) for q in queued])


def _messages(count: int) -> str:
    return f"{count} message{'s' if count != 1 else ''}"


def queued_note(queued: Queued, settings: Settings, store: Store) -> str:
    """`3 messages to 'ops-hook' left queued: next attempt at …, last error: …` (errors are redacted
    where they are recorded: a channel's URL never reaches them)."""
    reasons: list[str] = []
    waiting = queued.count - queued.digest_held
    if queued.digest_held:
        channel = settings.channels.get(queued.channel)
        last = store.meta.get(DIGEST_LAST.of(queued.channel))
        when = (
            f" at {minute(next_fire(channel.digest, channel.timezone, last))}"
            if channel is not None and channel.digest and last is not None
            else ""
        )
        reasons.append(f"{_messages(queued.digest_held)} wait for the channel's digest{when}")
    if waiting:
        if queued.channel not in settings.channels:
            reasons.append(f"{_messages(waiting)} for a channel no longer configured")
        else:
            at = f"next attempt at {minute(utc(queued.next_attempt_at))}" if queued.next_attempt_at else "due"
            tried = f" ({queued.attempts} attempt{'s' if queued.attempts != 1 else ''} so far)"
            reasons.append(at + (tried if queued.attempts else ""))
        if queued.last_error:
            reasons.append(f"last error: {queued.last_error}")
    return f"{_messages(queued.count)} to {queued.channel!r} left queued: {'; '.join(reasons)}"
