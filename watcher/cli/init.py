"""`trialwatch init [DIR]`: a commented settings file and watchlist for a first run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from watcher.cli.main import EXIT_USAGE, cli, fail

if TYPE_CHECKING:  # the configuration package is imported by the command itself: `--help` starts fast
    from watcher.config.starter import Starter


def _ask_trials() -> tuple[tuple[str, str], ...]:
    from watcher.config.starter import EXAMPLE_TRIALS
    from watcher.ids import find_nct_ids

    default = " ".join(nct_id for nct_id, _ in EXAMPLE_TRIALS)
    while True:
        answer = click.prompt("Trials to watch (NCT IDs or clinicaltrials.gov links)", default=default)
        if answer.strip() == default:
            return EXAMPLE_TRIALS
        found = find_nct_ids(answer)
        if found:
            return tuple((nct_id, "") for nct_id in found)
        click.echo("No NCT ID in that (NCT followed by 8 digits); try again.", err=True)


def _starter(trials: tuple[str, ...], channel: str | None, api_url: str | None) -> Starter:
    """The options given, and on a terminal the answers to what they left open; off a terminal
    (a script, CI, a container build) nothing is asked and the defaults stand."""
    from watcher.config.starter import EXAMPLE_TRIALS, Starter

    interactive = sys.stdin.isatty()
    chosen = tuple((nct_id, "") for nct_id in trials) or (_ask_trials() if interactive else EXAMPLE_TRIALS)
    if channel is None and interactive:
        channel = click.prompt(
            "Where should changes go? An apprise URL (slack://…, mailtos://…, json://host/path), "
            "or nothing to print them",
            default="",
            show_default=False,
        )
    return Starter(trials=chosen, channel_url=(channel or "").strip(), **({"api_url": api_url} if api_url else {}))


def _write_new(path: Path, text: str) -> None:
    with path.open("x", encoding="utf-8") as handle:
        handle.write(text)


@cli.command()
@click.argument("directory", metavar="[DIR]", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--trial", "trials", multiple=True, metavar="NCT", help="A trial to watch (repeat); default: two examples."
)
@click.option("--channel", metavar="URL", help="An apprise URL to send changes to; default: print them.")
@click.option("--api-url", metavar="URL", help="ClinicalTrials.gov API v2, or a mirror or test server of it.")
def init(directory: Path, trials: tuple[str, ...], channel: str | None, api_url: str | None) -> None:
    """Write a commented settings file and watchlist into DIR for a first run, and print what to run next.

    Asks what to watch and where to report only on a terminal; never overwrites a file."""
    from watcher.config import load_config
    from watcher.config.starter import SETTINGS_NAME, WATCHLIST_NAME, settings_text, watchlist_text
    from watcher.errors import ConfigError
    from watcher.ids import FULL_FORM, is_nct_id, normalize_nct_id

    bad = [t for t in trials if not is_nct_id(t)]
    if bad:
        fail(f"--trial: not an NCT ID ({FULL_FORM}): {', '.join(map(repr, bad))}; nothing written", EXIT_USAGE)
    settings, watchlist = directory / SETTINGS_NAME, directory / WATCHLIST_NAME
    existing = [str(p) for p in (settings, watchlist) if p.exists()]
    if existing:
        fail(
            f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; init writes only new files, "
            "nothing written (edit them, or give another DIR)",
            EXIT_USAGE,
        )
    starter = _starter(tuple(normalize_nct_id(t) for t in trials), channel, api_url)
    directory.mkdir(parents=True, exist_ok=True)
    _write_new(watchlist, watchlist_text(starter))
    _write_new(settings, settings_text(starter))
    try:
        load_config(settings)
    except ConfigError as exc:  # an answer that does not validate (a channel URL apprise refuses): undo
        settings.unlink()
        watchlist.unlink()
        fail(f"{exc}\nnothing written", EXIT_USAGE)
    count = len(starter.trials)
    click.echo(f"wrote {settings} (settings) and {watchlist} ({count} trial{'' if count == 1 else 's'})")
    click.echo("next, one poll now (the first records each trial's baseline):")
    click.echo(f"  trialwatch --config {settings} check")
    click.echo("then the service, polling every 6h:")
    click.echo(f"  trialwatch --config {settings} run")
