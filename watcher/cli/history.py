"""Reading history and importing it: `history`, `diff`, `changes`, `feed`, `backfill`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from watcher.cli.main import EXIT_FAILED, EXIT_USAGE, State, cli, fail, nct_id_argument, open_store
from watcher.errors import TrialWatchError


def _printed_as_data(items: Any, *, as_json: bool, as_csv: bool) -> bool:
    """`--json` / `--csv` output of stored changes (one row per change); False when neither was asked."""
    from watcher.views.changes import change_row, to_csv

    if as_json:
        click.echo(json.dumps([change_row(i) for i in items], indent=2, ensure_ascii=False))
    elif as_csv:
        click.echo(to_csv(change_row(i) for i in items), nl=False)
    return as_json or as_csv


@cli.command()
@click.argument("nct_id", callback=nct_id_argument)
@click.option(
    "--since", metavar="WHEN", help="Only changes detected since WHEN: 2026-03-01, a date-time, or 7d/12h ago."
)
@click.option(
    "--field",
    "fields",
    metavar="GLOB",
    multiple=True,
    help="Only fields matching GLOB, e.g. 'status.*' or 'locations.*' (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of change objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@click.pass_obj
def history(
    state: State, nct_id: str, *, since: str | None, fields: tuple[str, ...], as_json: bool, as_csv: bool
) -> None:
    """Every recorded change of one trial, oldest first."""
    from watcher.views.changes import QueryError, change_row, parse_when, select_changes

    if as_json and as_csv:
        fail("--json and --csv exclude each other", EXIT_USAGE)
    config = state.config()
    try:
        since_at = parse_when(since, now=datetime.now(UTC)) if since else None
    except QueryError as exc:
        fail(f"--since: {exc}", EXIT_USAGE)
    with open_store(config, read_only=True) as store:
        from watcher.detect.meaning import SeverityRules

        rules = SeverityRules.from_mapping(config.settings.severity_rules)  # the baseline's, derived when read
        items = select_changes(store.changes.of(nct_id, since=since_at, rules=rules), fields=fields)
    if _printed_as_data(items, as_json=as_json, as_csv=as_csv):
        return
    if not items:
        click.echo(
            f"No changes recorded for {nct_id} yet." if not (since or fields) else f"No changes of {nct_id} match."
        )
        return
    from watcher.detect.describe import change_line

    baseline = [i for i in items if i.baseline]
    if baseline:
        first = baseline[0].detected_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{first}  baseline: {len(baseline)} fields recorded (version {baseline[0].version})")
    for item in items:
        if item.baseline:
            continue
        data = change_row(item)
        stamp = item.detected_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{stamp}  v{item.version}  {item.change.severity:<8} {change_line(data)}")


@cli.command()
@click.argument("nct_id", callback=nct_id_argument)
@click.option(
    "--from",
    "from_",
    metavar="VERSION|DATE",
    help="The older version: a number, or the version current "
    "on a date (2026-03-01) or at an age (30d). Default: the one before --to.",
)
@click.option("--to", metavar="VERSION|DATE", help="The newer version, likewise. Default: the latest.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: both versions and the changes.")
@click.pass_obj
def diff(state: State, nct_id: str, from_: str | None, to: str | None, as_json: bool) -> None:
    """The field changes between two stored versions of a trial (recomputed from the records)."""
    from watcher.detect.describe import change_line
    from watcher.detect.meaning import SeverityRules
    from watcher.models import change_to_dict
    from watcher.views.changes import QueryError, diff_versions, resolve_version

    config = state.config()
    now = datetime.now(UTC)
    with open_store(config, read_only=True) as store:
        infos = store.versions.infos(nct_id)
        if not infos:
            fail(f"{nct_id} has no stored versions: add it to the watchlist and run `trialwatch check`", EXIT_USAGE)
        try:
            new = resolve_version(infos, to, default=-1, now=now)
            if from_ is None:
                older = [i for i in infos if i.version < new.version]
                if not older:
                    fail(f"{nct_id} has no version before version {new.version}; give --from", EXIT_USAGE)
                old = older[-1]
            else:
                old = resolve_version(infos, from_, default=0, now=now)
            result = diff_versions(store, nct_id, old, new, SeverityRules.from_mapping(config.settings.severity_rules))
        except QueryError as exc:
            fail(f"{nct_id}: {exc}", EXIT_USAGE)
    if as_json:

        def info(v: Any) -> dict[str, Any]:
            return {
                "version": v.version,
                "fetched_at": v.fetched_at.isoformat(),
                "source": v.source,
                "ctgov_version": v.ctgov_version,
                "last_update_post_date": v.last_update_post_date,
            }

        click.echo(
            json.dumps(
                {
                    "nct_id": nct_id,
                    "from": info(result.old),
                    "to": info(result.new),
                    "changes": [change_to_dict(c) for c in result.changes],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return

    def head(v: Any) -> str:
        posted = f", posted {v.last_update_post_date}" if v.last_update_post_date else ""
        return f"v{v.version} ({v.fetched_at:%Y-%m-%d %H:%M}, {v.source}{posted})"

    click.echo(
        f"{nct_id}: {head(result.old)} → {head(result.new)}: "
        f"{len(result.changes)} field change{'s' if len(result.changes) != 1 else ''}"
    )
    for change in result.changes:
        click.echo(f"  {change.severity:<8} {change_line(change_to_dict(change))}")


@cli.command()
@click.option(
    "--since",
    default="7d",
    show_default=True,
    metavar="WHEN",
    help="Changes detected since WHEN: 7d, 12h, 2026-03-01 or a date-time.",
)
@click.option("--tag", "tags", metavar="TAG", multiple=True, help="Only trials with this watchlist tag (repeatable).")
@click.option("--min-severity", type=click.Choice(["minor", "major", "critical"]), help="Leave out milder changes.")
@click.option("--field", "fields", metavar="GLOB", multiple=True, help="Only fields matching GLOB (repeatable).")
@click.option(
    "--all",
    "include_bookkeeping",
    is_flag=True,
    help="Include bookkeeping fields (last-update dates, derivedSection), left out by default.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of change objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@click.pass_obj
def changes(
    state: State,
    *,
    since: str,
    tags: tuple[str, ...],
    min_severity: str | None,
    fields: tuple[str, ...],
    include_bookkeeping: bool,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Changes across every watched trial, oldest first (baselines left out)."""
    from watcher.detect.describe import change_line
    from watcher.store.discovery import watched_trials
    from watcher.views.changes import QueryError, change_row, parse_when, select_changes

    if as_json and as_csv:
        fail("--json and --csv exclude each other", EXIT_USAGE)
    config = state.config()
    try:
        since_at = parse_when(since, now=datetime.now(UTC))
    except QueryError as exc:
        fail(f"--since: {exc}", EXIT_USAGE)
    with open_store(config, read_only=True) as store:
        watched = watched_trials(config, store.discovery)  # with `watch: true` search matches
        trials = [t for t in watched if not tags or set(tags) & set(t.tags)]
        if tags and not trials:
            fail(f"no watched trial has the tag {', '.join(tags)}", EXIT_USAGE)
        # whole-registry mode watches every stored study, not only the listed ones
        every = config.settings.registry.all and not tags
        found = store.changes.across(since=since_at, nct_ids=None if every else [t.nct_id for t in trials])
        announced = [m for m in store.discovery.matches() if not m.baseline and m.first_seen_at >= since_at]
    items = select_changes(found, fields=fields, min_severity=min_severity, include_bookkeeping=include_bookkeeping)
    if _printed_as_data(items, as_json=as_json, as_csv=as_csv):
        return
    if not items and not (announced and not tags):
        click.echo(f"No changes since {since_at:%Y-%m-%d %H:%M} UTC.")
        return
    labels = {t.nct_id: t.label for t in trials}
    lines = [(m.first_seen_at, _announced_line(m)) for m in ([] if tags else announced)]
    for item in items:
        who = f"{item.nct_id} ({labels[item.nct_id]})" if labels.get(item.nct_id) else item.nct_id
        line = f"{who}  v{item.version}  {item.change.severity:<8} {change_line(change_row(item))}"
        lines.append((item.detected_at, line))
    for at, line in sorted(lines, key=lambda pair: pair[0]):
        click.echo(f"{at:%Y-%m-%d %H:%M}  {line}")


def _announced_line(match: Any) -> str:
    """A new study a search announced (`search show NAME` lists each search's); its title is third-party
    text, shown on a terminal."""
    title = "".join(c if c.isprintable() else " " for c in match.title or "")
    return f"{match.nct_id}  new study matching search {match.search!r}: {title}"


@cli.command()
@click.option("--tag", metavar="TAG", help="Only trials with this watchlist tag.")
@click.option("--write", "write_files", is_flag=True, help="Write the files under feeds.path instead of printing.")
@click.pass_obj
def feed(state: State, tag: str | None, write_files: bool) -> None:
    """Print the Atom feed of recent changes (feeds.days), or write every feed file (--write)."""
    from watcher.store.discovery import watched_trials
    from watcher.views.feeds import feed_for, write_feeds

    config = state.config()
    now = datetime.now(UTC)
    with open_store(config, read_only=True) as store:
        if tag and not any(tag in t.tags for t in watched_trials(config, store.discovery)):
            fail(f"no watched trial has the tag {tag!r}", EXIT_USAGE)
        if write_files:
            if config.settings.feeds.path is None:
                fail("feeds.path is not set in the settings file", EXIT_USAGE)
            for path in write_feeds(config, store, now=now):
                click.echo(str(path))
            return
        click.echo(feed_for(config, store, now=now, tag=tag), nl=False)


@cli.command()
@click.argument("nct_ids", nargs=-1, required=True, callback=nct_id_argument)
@click.pass_obj
def backfill(state: State, nct_ids: tuple[str, ...]) -> None:
    """Import trials' past versions from ClinicalTrials.gov's record history."""
    from watcher.backfill import backfill as run_backfill
    from watcher.errors import BackfillError, StorageError
    from watcher.registry.client import CtGovClient

    config = state.config()
    failed = False
    with open_store(config) as store:
        client = CtGovClient(config.settings.api)
        try:
            for nct_id in nct_ids:
                try:
                    report = run_backfill(config, store, client, nct_id)
                except StorageError:
                    raise  # the database, not this trial: one line for the command (`Commands.invoke`)
                except (BackfillError, TrialWatchError) as exc:
                    click.echo(f"trialwatch: {nct_id}: backfill failed: {exc}", err=True)
                    failed = True
                    continue
                if report.note:
                    click.echo(f"{nct_id}: {report.note}")
                    continue
                capped = (
                    f", {report.skipped_over_cap} older left out (backfill.max_versions)"
                    if report.skipped_over_cap
                    else ""
                )
                plural = "" if report.imported == 1 else "s"
                click.echo(
                    f"{nct_id}: imported {report.imported} past version{plural} of {report.available} "
                    f"on ClinicalTrials.gov ({report.requests} requests{capped})"
                )
        finally:
            client.close()
    if failed:
        sys.exit(EXIT_FAILED)
