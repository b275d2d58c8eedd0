"""Notifications: `notify-test`, `notify-retry`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from watcher.cli.main import EXIT_FAILED, EXIT_USAGE, State, cli, fail, open_store


@cli.command("notify-test")
@click.option(
    "--channel",
    "channel_names",
    multiple=True,
    metavar="NAME",
    help="Only this channel (repeatable). Default: every channel.",
)
@click.pass_obj
def notify_test(state: State, channel_names: tuple[str, ...]) -> None:
    """Send a sample change set through each channel; print whether each accepted it (exit 1 if any failed)."""
    from watcher.notify.payloads import send_test

    config = state.config()
    channels = config.settings.channels
    if not channels:
        fail("no channels are configured: add one under `channels:` in the settings file", EXIT_USAGE)
    unknown = [n for n in channel_names if n not in channels]
    if unknown:
        fail(f"unknown channel {', '.join(map(repr, unknown))} (known: {', '.join(channels)})", EXIT_USAGE)
    outcomes = send_test(config, list(channel_names or channels), now=datetime.now(UTC))
    for outcome in outcomes:
        click.echo(f"{outcome.channel}: " + ("accepted" if outcome.accepted else f"FAILED: {outcome.error}"))
    if not all(o.accepted for o in outcomes):
        sys.exit(EXIT_FAILED)


@cli.command("notify-retry")
@click.option("--channel", metavar="NAME", help="Only this channel's parked messages.")
@click.pass_obj
def notify_retry(state: State, channel: str | None) -> None:
    """Give parked messages (those that failed notify.max_attempts times) a fresh set of attempts."""
    config = state.config()
    known = list(config.settings.channels)
    if channel is not None and channel not in known:
        fail(f"unknown channel {channel!r} (known: {', '.join(known) or 'none are configured'})", EXIT_USAGE)
    with open_store(config) as store:
        count = store.outbox.requeue_parked(datetime.now(UTC), channel=channel)
    click.echo(
        f"{count} parked message{'s' if count != 1 else ''} queued again; "
        f"the service sends them on its next notification tick."
    )
