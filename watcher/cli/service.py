"""Polling and the service: `check`, `run`, `status`, `check-config`."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click

from watcher.cli.main import EXIT_FAILED, EXIT_USAGE, State, cli, fail, open_store
from watcher.errors import ConfigError, TrialWatchError

if TYPE_CHECKING:
    from watcher.cycle.report import CycleReport


@cli.command()
@click.option("--full", is_flag=True, help="Re-fetch every trial's full record, whatever changed.")
@click.pass_obj
def check(state: State, full: bool) -> None:
    """Run one poll cycle now. Exit 0 when every trial was checked; 1 when any failed, or is not found
    on ClinicalTrials.gov (on every run until the watchlist is fixed, so monitoring does not flap)."""
    from watcher.cycle import Cycle
    from watcher.registry.client import CtGovClient
    from watcher.service.progress import poll_progress

    config = state.config()
    with open_store(config) as store:
        client = CtGovClient(config.settings.api)
        started = datetime.now(UTC)
        try:
            with poll_progress() as progress:  # a bar on a terminal, poll.progress events otherwise
                report = Cycle(config, store, client, write=click.echo, progress=progress).run(
                    force_full=full, wait_for_lock=True
                )
            not_found = store.trials.not_found()
        except TrialWatchError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            _interrupted(store, started)
        finally:
            client.close()
    _say_baselines(report)
    for line in report.left_queued:
        click.echo(f"trialwatch: {line}", err=True)
    if report.api_error:
        fail(f"cycle failed: {report.api_error}")
    for nct_id, error in sorted(report.failed.items()):
        click.echo(f"trialwatch: {nct_id}: {error}", err=True)
    # A 404 is looked at again only at the weekly full re-fetch; until then every run says so again.
    missing = sorted(set(report.not_found) | {t.nct_id for t in config.watchlist.trials if t.nct_id in not_found})
    for nct_id in missing:
        click.echo(f"trialwatch: {nct_id}: not found on ClinicalTrials.gov (404); check the watchlist", err=True)
    if report.failed or missing:
        sys.exit(EXIT_FAILED)


def _say_baselines(report: CycleReport) -> None:
    """A first `check` records and reports nothing else: say so, or it looks as if nothing happened."""
    count = len(report.baselines)
    if not count:
        return
    noun = "trial" if count == 1 else "trials"
    if count == report.checked:
        click.echo(f"Recorded {count} {noun} (baseline); changes are reported from the next cycle on.")
    else:
        them = "it" if count == 1 else "them"
        click.echo(f"Recorded {count} new {noun} (baseline); changes to {them} are reported from the next cycle on.")


def _interrupted(store: Any, started: datetime) -> NoReturn:
    """Ctrl-C during `check`: every page of trials is its own transaction, so what was saved stays saved
    and the page in hand is rolled back whole; say so, close the cycle in the log, exit 130 (128 + SIGINT)."""
    saved = sorted(
        nct_id
        for nct_id, st in store.trials.states().items()
        if st.last_checked_at is not None and st.last_checked_at >= started
    )
    store.cycles.close_open(datetime.now(UTC), result="interrupted", since=started)
    click.echo(
        f"trialwatch: interrupted; {len(saved)} trial{'s' if len(saved) != 1 else ''} checked and saved "
        "before the stop, those in hand were rolled back; run `trialwatch check` again to finish",
        err=True,
    )
    sys.exit(130)


@cli.command()
@click.pass_obj
def run(state: State) -> None:
    """Run the service: poll at start and every schedule.interval; TERM/INT stop, HUP reloads.
    On a broken watchlist it starts with the last good one it ran with (and alerts); else exit 2."""
    from watcher.service.daemon import serve
    from watcher.service.lastgood import startup_config

    try:
        config, rejected = startup_config(state.path)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        code = serve(config, state.path, rejected=rejected)
    except TrialWatchError as exc:  # the database cannot be opened, for one
        fail(str(exc))
    except OSError as exc:  # a full disk or a read-only state directory at start: one line, not a traceback
        fail(f"cannot start: {exc.strerror or type(exc).__name__}" + (f": {exc.filename}" if exc.filename else ""))
    sys.exit(code)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--check", is_flag=True, help="Exit 1 unless the service is running and healthy (a container's health check)."
)
@click.pass_obj
def status(state: State, as_json: bool, check: bool) -> None:
    """The service: last and next cycle, trials watched, notifications owed, failing trials."""
    from watcher.config import Config, Watchlist, load_config, load_settings
    from watcher.service.status import read_status, status_lines

    problems: list[str] = []
    try:
        config = load_config(state.path, look_up=False)
    except ConfigError as exc:  # the status of a service whose watchlist was just broken matters most
        problems = [str(p) for p in exc.problems]
        try:
            settings = load_settings(state.path, look_up=False)
        except ConfigError as exc2:
            fail(str(exc2), EXIT_USAGE)
        config = Config(settings, Watchlist(settings.watchlist_path, ()))
    now = datetime.now(UTC)
    with open_store(config, read_only=True) as store:
        current = read_status(config, store, now=now)
    if problems:
        current = replace(current, watchlist_error=problems, trials=current.service_trials or 0)
    if as_json:
        click.echo(json.dumps(current.to_json(), indent=2, ensure_ascii=False))
    else:
        for line in status_lines(current, now=now):
            click.echo(line)
    if check and not (current.service == "running" and current.health in (None, "ok")):
        sys.exit(EXIT_FAILED)


@cli.command("check-config")
@click.pass_obj
def check_config(state: State) -> None:
    """Validate the settings file and the watchlist; list every problem (exit 2 when any)."""
    from watcher.config.secrets import redact_url

    config = state.config()
    settings = config.settings
    click.echo(f"settings:  {settings.path or '(built-in defaults)'}")
    click.echo(f"watchlist: {config.watchlist.path} ({len(config.watchlist.trials)} trials)")
    for found in config.watchlist.searches:
        click.echo(
            f"search:    {found.name}: "
            + " ".join(f"{k}={v}" for k, v in found.params().items())
            + (", matches watched" if found.watch else ", matches announced")
        )
    from watcher.store.connection import probe_database, redact_db_url

    problem, note = probe_database(settings.storage_url)
    click.echo(f"storage:   {redact_db_url(settings.storage_url)}" + (f" ({note})" if note else ""))
    click.echo(
        f"interval:  {settings.interval}"
        + (f" (jitter {settings.jitter})" if settings.jitter else "")
        + ("" if settings.run_at_start else ", no poll at start")
    )
    own = [t for t in config.watchlist.trials if t.interval]
    if own:
        click.echo(
            f"           {len(own)} trial{'s' if len(own) != 1 else ''} with their own interval: "
            + ", ".join(f"{t.nct_id} every {t.interval}" for t in own)
        )
    click.echo(
        f"service:   notify every {settings.notify_interval}, watch the watchlist every "
        f"{settings.watch_interval or 'never (SIGHUP only)'}, stop within {settings.stop_timeout}"
    )
    if settings.channels:
        for name, channel in settings.channels.items():
            click.echo(f"channel:   {name} → {redact_url(channel.url)}")
    else:
        click.echo("channels:  none (changes are printed to stdout)")
    if problem is not None:
        from watcher.config.load import setting_line

        line = setting_line(settings.path, "storage", "url")
        where = f"{settings.path or '<defaults>'}" + (f":{line}" if line else "")
        fail(f"{where}: storage.url: {problem}", EXIT_USAGE)
    click.echo("OK")
