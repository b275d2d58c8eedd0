"""The `trialwatch` command: the only place that parses argv and picks exit codes.

Exit codes: 0 ok, 1 runtime failure (a trial or the API failed), 2 usage or configuration error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click

from watcher import __version__
from watcher.config import Config, load_config, resolve_config_path
from watcher.errors import ConfigError, StorageError, TrialWatchError
from watcher.ids import normalize_nct_id

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class State:
    """What the group options decided, handed to every command."""

    def __init__(self, config_path: str | None, log_level: str, log_format: str | None) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.log_format = log_format
        self._config: Config | None = None

    @property
    def path(self) -> Path | None:
        return resolve_config_path(self.config_path)

    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.path)
            except ConfigError as exc:
                fail(str(exc), EXIT_USAGE)
        return self._config


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"trialwatch: {message}", err=True)
    sys.exit(code)


@contextmanager
def open_store(config: Config) -> Iterator[Any]:
    from watcher.store import Store

    try:
        store = Store(config.settings.storage_url)
    except StorageError as exc:
        fail(str(exc))
    try:
        yield store
    finally:
        store.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar="TRIALWATCH_CONFIG",
              help="Settings file (default: $TRIALWATCH_CONFIG, else ./trialwatch.yaml, else built-in defaults).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Minimum level logged to stderr.")
@click.option("--log-format", type=click.Choice(["console", "json", "journald"]),
              help="Default: journald under systemd, console on a terminal, JSON otherwise.")
@click.version_option(__version__, prog_name="trialwatch")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str, log_format: str | None) -> None:
    """Watch ClinicalTrials.gov trials and report, field by field, what changed."""
    from watcher.service.logs import configure

    configure(log_level, log_format)
    ctx.obj = State(config_path, log_level, log_format)


# -- polling ---------------------------------------------------------------------------------------


@cli.command()
@click.option("--full", is_flag=True, help="Re-fetch every trial's full record, whatever changed.")
@click.pass_obj
def check(state: State, full: bool) -> None:
    """Run one poll cycle now. Exit 0 when every trial was checked, 1 when any failed."""
    from watcher.cycle import Cycle
    from watcher.registry.client import CtGovClient
    from watcher.service.progress import poll_progress

    config = state.config()
    with open_store(config) as store:
        client = CtGovClient(config.settings.api)
        try:
            with poll_progress() as progress:  # a bar on a terminal, poll.progress events otherwise
                report = Cycle(config, store, client, write=click.echo, progress=progress).run(
                    force_full=full, wait_for_lock=True)
        except TrialWatchError as exc:
            fail(str(exc))
        finally:
            client.close()
    if report.api_error:
        fail(f"cycle failed: {report.api_error}")
    for nct_id, error in sorted(report.failed.items()):
        click.echo(f"trialwatch: {nct_id}: {error}", err=True)
    for nct_id in report.not_found:
        click.echo(f"trialwatch: {nct_id}: not found on ClinicalTrials.gov (404); check the watchlist", err=True)
    if report.failed or report.not_found:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.pass_obj
def run(state: State) -> None:
    """Run the service: poll at start and every schedule.interval; TERM/INT stop, HUP reloads."""
    from watcher.service.daemon import serve

    config = state.config()
    try:
        code = serve(config, state.path)
    except TrialWatchError as exc:  # the database cannot be opened, for one
        fail(str(exc))
    sys.exit(code)


# -- reading history -------------------------------------------------------------------------------


@cli.command()
@click.argument("nct_id")
@click.option("--since", metavar="WHEN",
              help="Only changes detected since WHEN: 2026-03-01, a date-time, or 7d/12h ago.")
@click.option("--field", "fields", metavar="GLOB", multiple=True,
              help="Only fields matching GLOB, e.g. 'status.*' or 'locations.*' (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of change objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@click.pass_obj
def history(state: State, nct_id: str, *, since: str | None, fields: tuple[str, ...], as_json: bool,
            as_csv: bool) -> None:
    """Every recorded change of one trial, oldest first."""
    from watcher.views.changes import QueryError, change_row, parse_when, select_changes, to_csv

    if as_json and as_csv:
        fail("--json and --csv exclude each other", EXIT_USAGE)
    nct_id = normalize_nct_id(nct_id)
    config = state.config()
    try:
        since_at = parse_when(since, now=datetime.now(UTC)) if since else None
    except QueryError as exc:
        fail(f"--since: {exc}", EXIT_USAGE)
    with open_store(config) as store:
        items = select_changes(store.changes_of(nct_id, since=since_at), fields=fields)
    if as_json:
        click.echo(json.dumps([change_row(i) for i in items], indent=2, ensure_ascii=False))
        return
    if as_csv:
        click.echo(to_csv(change_row(i) for i in items), nl=False)
        return
    if not items:
        click.echo(f"No changes recorded for {nct_id} yet." if not (since or fields)
                   else f"No changes of {nct_id} match.")
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


# -- history queries, feeds, the database and backfill (storage) ----------------------------------


@cli.command()
@click.argument("nct_id")
@click.option("--from", "from_", metavar="VERSION|DATE", help="The older version: a number, or the version current "
              "on a date (2026-03-01) or at an age (30d). Default: the one before --to.")
@click.option("--to", metavar="VERSION|DATE", help="The newer version, likewise. Default: the latest.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: both versions and the changes.")
@click.pass_obj
def diff(state: State, nct_id: str, from_: str | None, to: str | None, as_json: bool) -> None:
    """The field changes between two stored versions of a trial (recomputed from the records)."""
    from watcher.detect.describe import change_line
    from watcher.detect.meaning import SeverityRules
    from watcher.models import change_to_dict
    from watcher.views.changes import QueryError, diff_versions, resolve_version

    nct_id = normalize_nct_id(nct_id)
    config = state.config()
    now = datetime.now(UTC)
    with open_store(config) as store:
        infos = store.version_infos(nct_id)
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
            return {"version": v.version, "fetched_at": v.fetched_at.isoformat(), "source": v.source,
                    "ctgov_version": v.ctgov_version, "last_update_post_date": v.last_update_post_date}

        click.echo(json.dumps({"nct_id": nct_id, "from": info(result.old), "to": info(result.new),
                               "changes": [change_to_dict(c) for c in result.changes]}, indent=2, ensure_ascii=False))
        return

    def head(v: Any) -> str:
        posted = f", posted {v.last_update_post_date}" if v.last_update_post_date else ""
        return f"v{v.version} ({v.fetched_at:%Y-%m-%d %H:%M}, {v.source}{posted})"

    click.echo(f"{nct_id}: {head(result.old)} → {head(result.new)}: "
               f"{len(result.changes)} field change{'s' if len(result.changes) != 1 else ''}")
    for change in result.changes:
        click.echo(f"  {change.severity:<8} {change_line(change_to_dict(change))}")


@cli.command()
@click.option("--since", default="7d", show_default=True, metavar="WHEN",
              help="Changes detected since WHEN: 7d, 12h, 2026-03-01 or a date-time.")
@click.option("--tag", "tags", metavar="TAG", multiple=True, help="Only trials with this watchlist tag (repeatable).")
@click.option("--min-severity", type=click.Choice(["minor", "major", "critical"]), help="Leave out milder changes.")
@click.option("--field", "fields", metavar="GLOB", multiple=True, help="Only fields matching GLOB (repeatable).")
@click.option("--all", "include_bookkeeping", is_flag=True,
              help="Include bookkeeping fields (last-update dates, derivedSection), left out by default.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of change objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@click.pass_obj
def changes(state: State, *, since: str, tags: tuple[str, ...], min_severity: str | None, fields: tuple[str, ...],
            include_bookkeeping: bool, as_json: bool, as_csv: bool) -> None:
    """Changes across every watched trial, oldest first (baselines left out)."""
    from watcher.detect.describe import change_line
    from watcher.views.changes import QueryError, change_row, parse_when, select_changes, to_csv

    if as_json and as_csv:
        fail("--json and --csv exclude each other", EXIT_USAGE)
    config = state.config()
    try:
        since_at = parse_when(since, now=datetime.now(UTC))
    except QueryError as exc:
        fail(f"--since: {exc}", EXIT_USAGE)
    trials = [t for t in config.watchlist.trials if not tags or set(tags) & set(t.tags)]
    if tags and not trials:
        fail(f"no watched trial has the tag {', '.join(tags)}", EXIT_USAGE)
    with open_store(config) as store:
        found = store.changes(since=since_at, nct_ids=[t.nct_id for t in trials])
    items = select_changes(found, fields=fields, min_severity=min_severity, include_bookkeeping=include_bookkeeping)
    if as_json:
        click.echo(json.dumps([change_row(i) for i in items], indent=2, ensure_ascii=False))
        return
    if as_csv:
        click.echo(to_csv(change_row(i) for i in items), nl=False)
        return
    if not items:
        click.echo(f"No changes since {since_at:%Y-%m-%d %H:%M} UTC.")
        return
    labels = {t.nct_id: t.label for t in trials}
    for item in items:
        who = f"{item.nct_id} ({labels[item.nct_id]})" if labels.get(item.nct_id) else item.nct_id
        click.echo(f"{item.detected_at:%Y-%m-%d %H:%M}  {who}  v{item.version}  {item.change.severity:<8} "
                   f"{change_line(change_row(item))}")


@cli.command()
@click.option("--tag", metavar="TAG", help="Only trials with this watchlist tag.")
@click.option("--write", "write_files", is_flag=True, help="Write the files under feeds.path instead of printing.")
@click.pass_obj
def feed(state: State, tag: str | None, write_files: bool) -> None:
    """Print the Atom feed of recent changes (feeds.days), or write every feed file (--write)."""
    from watcher.views.feeds import feed_for, write_feeds

    config = state.config()
    now = datetime.now(UTC)
    if tag and not any(tag in t.tags for t in config.watchlist.trials):
        fail(f"no watched trial has the tag {tag!r}", EXIT_USAGE)
    with open_store(config) as store:
        if write_files:
            if config.settings.feeds.path is None:
                fail("feeds.path is not set in the settings file", EXIT_USAGE)
            for path in write_feeds(config, store, now=now):
                click.echo(str(path))
            return
        click.echo(feed_for(config, store, now=now, tag=tag), nl=False)


@cli.group()
def db() -> None:
    """The database: schema migrations and storage."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(state: State) -> None:
    """Upgrade the schema to the newest revision (the service also does this on start)."""
    from watcher.store import Store
    from watcher.store.connection import redact_db_url

    config = state.config()
    try:
        store = Store(config.settings.storage_url, create=False)
        try:
            before = store.schema_revision()
            applied = store.upgrade()
            after = store.schema_revision()
        finally:
            store.close()
    except StorageError as exc:
        fail(str(exc))
    where = redact_db_url(config.settings.storage_url)
    if applied:
        label = before or ("0001 (the first schema)" if applied[0] != "0001" else "empty")
        click.echo(f"{where}: upgraded {label} → {after} (applied {', '.join(applied)})")
    else:
        click.echo(f"{where}: schema is current ({after})")


@db.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def db_stats(state: State, as_json: bool) -> None:
    """Versions stored and the bytes they take (compressed, deduplicated)."""
    config = state.config()
    with open_store(config) as store:
        stats = store.retention.stats()
        revision = store.schema_revision()
    data = {"revision": revision, "versions": stats.versions, "pruned": stats.pruned, "blobs": stats.blobs,
            "blob_bytes": stats.blob_bytes, "raw_bytes": stats.raw_bytes, "legacy_bytes": stats.legacy_bytes}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        click.echo(f"{key + ':':<14}{value}")


@db.command("prune")
@click.pass_obj
def db_prune(state: State) -> None:
    """Apply storage.keep_versions / storage.keep_days now (the service does it daily)."""
    config = state.config()
    settings = config.settings
    with open_store(config) as store:
        result = store.retention.apply(keep_versions=settings.keep_versions, keep_days=settings.keep_days,
                                       now=datetime.now(UTC))
    click.echo(f"pruned {result.pruned} versions, deleted {result.blobs_deleted} blobs "
               f"({result.bytes_freed} bytes); kept {result.kept_for_outbox} for undelivered notifications")


@cli.command()
@click.argument("nct_ids", nargs=-1, required=True)
@click.pass_obj
def backfill(state: State, nct_ids: tuple[str, ...]) -> None:
    """Import trials' past versions from ClinicalTrials.gov's record history."""
    from watcher.backfill import backfill as run_backfill
    from watcher.errors import BackfillError
    from watcher.registry.client import CtGovClient

    config = state.config()
    failed = False
    with open_store(config) as store:
        client = CtGovClient(config.settings.api)
        try:
            for raw in nct_ids:
                nct_id = normalize_nct_id(raw)
                try:
                    report = run_backfill(config, store, client, nct_id)
                except (BackfillError, TrialWatchError) as exc:
                    click.echo(f"trialwatch: {nct_id}: backfill failed: {exc}", err=True)
                    failed = True
                    continue
                if report.note:
                    click.echo(f"{nct_id}: {report.note}")
                    continue
                capped = f", {report.skipped_over_cap} older left out (backfill.max_versions)" \
                    if report.skipped_over_cap else ""
                plural = "" if report.imported == 1 else "s"
                click.echo(f"{nct_id}: imported {report.imported} past version{plural} of {report.available} "
                           f"on ClinicalTrials.gov ({report.requests} requests{capped})")
        finally:
            client.close()
    if failed:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.argument("nct_id")
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1),
              help="How far back the Recent Field Changes section reaches.")
@click.pass_obj
def show(state: State, nct_id: str, days: int) -> None:
    """A markdown page of the trial's latest version and its recent field changes."""
    from watcher.views.trial_page import render_trial_page

    nct_id = normalize_nct_id(nct_id)
    config = state.config()
    today = datetime.now(UTC).date()
    with open_store(config) as store:
        latest = store.latest_snapshot(nct_id)
        if latest is None:
            fail(f"{nct_id} has no stored snapshot yet: add it to the watchlist and run `trialwatch check`")
        since = datetime.combine(today - timedelta(days=days), datetime.min.time(), tzinfo=UTC)
        recent = [(i.detected_at.date(), i.change) for i in store.changes_of(nct_id, since=since)]
    click.echo(render_trial_page(latest.record, recent, days=days, today=today), nl=False)


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_obj
def list_trials(state: State, as_json: bool) -> None:
    """The watched trials: label, status, last change, last checked."""
    config = state.config()
    with open_store(config) as store:
        states = store.trial_states()
    rows: list[dict[str, Any]] = []
    for trial in config.watchlist.trials:
        st = states.get(trial.nct_id)
        rows.append({
            "nct_id": trial.nct_id, "label": trial.label, "tags": list(trial.tags),
            "channels": list(trial.channels) if trial.channels is not None else None,
            "status": st.overall_status if st else None,
            "last_change": _iso(st.last_changed_at) if st else None,
            "last_checked": _iso(st.last_checked_at) if st else None,
            "failing": (st.last_error if st and st.consecutive_failures else None),
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"No trials in {config.watchlist.path}. Add one with: trialwatch add NCT06747156")
        return
    _table(["NCT ID", "LABEL", "STATUS", "LAST CHANGE", "LAST CHECKED"],
           [[r["nct_id"], r["label"] or "", r["status"] or "-", _short(r["last_change"]),
             _short(r["last_checked"])] for r in rows])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _short(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


# -- the watchlist and the service ---------------------------------------------------------------


def _edit_watchlist(state: State, edit: Any) -> Any:
    """Read, edit, validate and atomically replace the watchlist, holding the edit lock throughout."""
    from watcher.config.edit import locked, read_text
    from watcher.files import write_atomically

    config = state.config()
    path = config.watchlist.path
    try:
        with locked(path) as real:
            text = read_text(real)
            try:
                result = edit(text, path, list(config.settings.channels))
            except ConfigError as exc:
                fail(f"{path}: nothing changed: {exc}", EXIT_USAGE)
            if result.done:
                write_atomically(real, result.text)
    except OSError as exc:
        fail(f"{path}: cannot edit: {exc.strerror or exc}; nothing changed")
    return result


def _given_ids(raw: Sequence[str]) -> list[str]:
    """The IDs typed on the command line in canonical form; any typo stops the command before it edits."""
    from watcher.ids import FULL_FORM, is_nct_id, normalize_nct_id

    bad = [r for r in raw if not is_nct_id(r)]
    if bad:
        fail(f"not an NCT ID ({FULL_FORM}): {', '.join(map(repr, bad))}; nothing changed", EXIT_USAGE)
    return [normalize_nct_id(r) for r in raw]


@cli.command()
@click.argument("nct_ids", nargs=-1, metavar="NCT…")
@click.option("--from", "source", type=click.File("r", encoding="utf-8"), metavar="FILE|-",
              help="Also add every NCT ID found in this text (an article, an email, URLs); - reads stdin.")
@click.option("--label", help="A name shown in notification titles.")
@click.option("--channel", "channels", multiple=True, metavar="NAME",
              help="Send this trial's changes only to these channels (repeatable; default: every channel).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tags for channel routing (repeatable).")
@click.pass_obj
def add(state: State, nct_ids: tuple[str, ...], source: Any, label: str | None, *, channels: tuple[str, ...],
        tags: tuple[str, ...]) -> None:
    """Add trials to the watchlist, keeping its comments and layout; the running service picks them up."""
    from watcher.config.edit import NewTrial, add_trials
    from watcher.ids import find_nct_ids

    wanted = _given_ids(nct_ids)
    if source is not None:
        found = find_nct_ids(source.read())
        if not found:
            fail(f"no NCT ID found in {source.name}; nothing changed", EXIT_USAGE)
        click.echo(f"found {len(found)} NCT ID{'s' if len(found) != 1 else ''} in {source.name}: {', '.join(found)}")
        wanted += found
    if not wanted:
        fail("give at least one NCT ID, or --from FILE", EXIT_USAGE)
    known = list(state.config().settings.channels)
    unknown = [c for c in channels if c not in known]
    if unknown:
        fail(f"unknown channel {', '.join(map(repr, unknown))} (known: {', '.join(known) or 'none are configured'});"
             " nothing changed", EXIT_USAGE)
    trials = [NewTrial(i, label=label, channels=channels, tags=tags) for i in dict.fromkeys(wanted)]
    result = _edit_watchlist(state, lambda text, path, names: add_trials(text, path, trials, names))
    for nct_id in result.done:
        click.echo(f"added            {nct_id}")
    for nct_id in result.skipped:
        click.echo(f"already watched  {nct_id}")
    click.echo(f"{state.config().watchlist.path}: {len(result.done)} added, {len(result.skipped)} already watched, "
               f"{len(result.watchlist.trials)} trials in all")


@cli.command()
@click.argument("nct_ids", nargs=-1, required=True, metavar="NCT…")
@click.pass_obj
def remove(state: State, nct_ids: tuple[str, ...]) -> None:
    """Remove trials from the watchlist (with the comment lines directly above each); history is kept."""
    from watcher.config.edit import remove_trials

    wanted = _given_ids(nct_ids)
    result = _edit_watchlist(state, lambda text, path, names: remove_trials(text, path, wanted, names))
    for nct_id in result.done:
        click.echo(f"removed          {nct_id}")
    for nct_id in result.skipped:
        click.echo(f"not watched      {nct_id}")
    click.echo(f"{state.config().watchlist.path}: {len(result.done)} removed, "
               f"{len(result.watchlist.trials)} trials left")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status(state: State, as_json: bool) -> None:
    """The service: last and next cycle, trials watched, notifications owed, failing trials."""
    from watcher.config import Watchlist, load_settings
    from watcher.service.status import read_status, status_lines

    problems: list[str] = []
    try:
        config = load_config(state.path)
    except ConfigError as exc:  # the status of a service whose watchlist was just broken matters most
        problems = [str(p) for p in exc.problems]
        try:
            settings = load_settings(state.path)
        except ConfigError as exc2:
            fail(str(exc2), EXIT_USAGE)
        config = Config(settings, Watchlist(settings.watchlist_path, ()))
    now = datetime.now(UTC)
    with open_store(config) as store:
        current = read_status(config, store, now=now)
    if problems:
        current = replace(current, watchlist_error=problems, trials=current.service_trials or 0)
    if as_json:
        click.echo(json.dumps(current.to_json(), indent=2, ensure_ascii=False))
        return
    for line in status_lines(current, now=now):
        click.echo(line)


# -- configuration ---------------------------------------------------------------------------------


@cli.command("check-config")
@click.pass_obj
def check_config(state: State) -> None:
    """Validate the settings file and the watchlist; list every problem (exit 2 when any)."""
    from watcher.config.secrets import redact_url

    config = state.config()
    settings = config.settings
    click.echo(f"settings:  {settings.path or '(built-in defaults)'}")
    click.echo(f"watchlist: {config.watchlist.path} ({len(config.watchlist.trials)} trials)")
    from watcher.store.connection import redact_db_url

    click.echo(f"storage:   {redact_db_url(settings.storage_url)}")
    click.echo(f"interval:  {settings.interval}" + (f" (jitter {settings.jitter})" if settings.jitter else "")
               + ("" if settings.run_at_start else ", no poll at start"))
    own = [t for t in config.watchlist.trials if t.interval]
    if own:
        click.echo(f"           {len(own)} trial{'s' if len(own) != 1 else ''} with their own interval: "
                   + ", ".join(f"{t.nct_id} every {t.interval}" for t in own))
    click.echo(f"service:   notify every {settings.notify_interval}, watch the watchlist every "
               f"{settings.watch_interval or 'never (SIGHUP only)'}, stop within {settings.stop_timeout}")
    if settings.channels:
        for name, channel in settings.channels.items():
            click.echo(f"channel:   {name} → {redact_url(channel.url)}")
    else:
        click.echo("channels:  none (changes are printed to stdout)")
    click.echo("OK")


# -- notifications ---------------------------------------------------------------------------------


@cli.command("notify-test")
@click.option("--channel", "channel_names", multiple=True, metavar="NAME",
              help="Only this channel (repeatable). Default: every channel.")
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
    with open_store(config) as store:
        count = store.outbox.requeue_parked(datetime.now(UTC), channel=channel)
    click.echo(f"{count} parked message{'s' if count != 1 else ''} queued again; "
               f"the service sends them on its next notification tick.")


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="trialwatch")
