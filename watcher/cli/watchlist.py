"""The watchlist: `add`, `remove`, `list`, `show`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from watcher.cli.main import EXIT_USAGE, State, cli, fail, nct_id_argument, open_store
from watcher.errors import ConfigError


def edit_watchlist(state: State, edit: Any) -> Any:
    """Read, edit, validate and atomically replace the watchlist, holding the edit lock throughout."""
    from watcher.config.edit import locked, read_text
    from watcher.files import write_atomically

    config = state.config(missing_watchlist_ok=True)
    path = config.watchlist.path
    try:
        with locked(path) as real:
            existed = real.exists()
            text = read_text(real)
            try:
                result = edit(text, path, list(config.settings.channels))
            except ConfigError as exc:
                fail(f"{path}: nothing changed: {exc}", EXIT_USAGE)
            if result.done:
                write_atomically(real, result.text)
    except OSError as exc:
        fail(f"{path}: cannot edit: {exc.strerror or exc}; nothing changed")
    if result.done and not existed:
        settings = config.settings.path or "none found: built-in defaults"
        click.echo(
            f"trialwatch: created a new watchlist {real} (settings file: {settings}); a running service "
            "reads the watchlist its own settings file names: pass --config or set TRIALWATCH_CONFIG to edit "
            "that one",
            err=True,
        )
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
@click.option(
    "--from",
    "source",
    type=click.File("r", encoding="utf-8"),
    metavar="FILE|-",
    help="Also add every NCT ID found in this text (an article, an email, URLs); - reads stdin.",
)
@click.option("--label", help="A name shown in notification titles.")
@click.option(
    "--channel",
    "channels",
    multiple=True,
    metavar="NAME",
    help="Send this trial's changes only to these channels (repeatable; default: every channel).",
)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tags for channel routing (repeatable).")
@click.pass_obj
def add(
    state: State,
    nct_ids: tuple[str, ...],
    source: Any,
    label: str | None,
    *,
    channels: tuple[str, ...],
    tags: tuple[str, ...],
) -> None:
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
    known = list(state.config(missing_watchlist_ok=True).settings.channels)
    unknown = [c for c in channels if c not in known]
    if unknown:
        fail(
            f"unknown channel {', '.join(map(repr, unknown))} (known: {', '.join(known) or 'none are configured'});"
            " nothing changed",
            EXIT_USAGE,
        )
    trials = [NewTrial(i, label=label, channels=channels, tags=tags) for i in dict.fromkeys(wanted)]
    result = edit_watchlist(state, lambda text, path, names: add_trials(text, path, trials, names))
    for nct_id in result.done:
        click.echo(f"added            {nct_id}")
    for nct_id in result.skipped:
        click.echo(f"already watched  {nct_id}")
    where = state.config().watchlist.path.resolve()
    click.echo(
        f"{where}: {len(result.done)} added, {len(result.skipped)} already watched, "
        f"{len(result.watchlist.trials)} trials in all"
    )


@cli.command()
@click.argument("nct_ids", nargs=-1, required=True, metavar="NCT…")
@click.pass_obj
def remove(state: State, nct_ids: tuple[str, ...]) -> None:
    """Remove trials from the watchlist (with the comment lines directly above each); history is kept."""
    from watcher.config.edit import remove_trials

    wanted = _given_ids(nct_ids)
    result = edit_watchlist(state, lambda text, path, names: remove_trials(text, path, wanted, names))
    for nct_id in result.done:
        click.echo(f"removed          {nct_id}")
    for nct_id in result.skipped:
        click.echo(f"not watched      {nct_id}")
    click.echo(
        f"{state.config().watchlist.path.resolve()}: {len(result.done)} removed, "
        f"{len(result.watchlist.trials)} trials left"
    )


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_obj
def list_trials(state: State, as_json: bool) -> None:
    """The watched trials: label, source (the watchlist, or the search that found it), status, last change, checks."""
    from watcher.store.discovery import found_trials

    config = state.config(look_up=False)
    with open_store(config, read_only=True) as store:
        found = found_trials(config, store.discovery)
        states = store.trials.states([t.nct_id for t in (*config.watchlist.trials, *found)])
    rows: list[dict[str, Any]] = []
    for trial in (*config.watchlist.trials, *found):
        st = states.get(trial.nct_id)
        rows.append(
            {
                "nct_id": trial.nct_id,
                "label": trial.label,
                "tags": list(trial.tags),
                "source": trial.source or "watchlist",
                "channels": list(trial.channels) if trial.channels is not None else None,
                "status": st.overall_status if st else None,
                "last_change": _iso(st.last_changed_at) if st else None,
                "last_checked": _iso(st.last_checked_at) if st else None,
                "failing": (st.last_error if st and st.consecutive_failures else None),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"No trials in {config.watchlist.path}. Add one with: trialwatch add NCT06747156")
        return
    _table(
        ["NCT ID", "LABEL", "SOURCE", "STATUS", "LAST CHANGE", "LAST CHECKED"],
        [
            [
                r["nct_id"],
                r["label"] or "",
                r["source"],
                r["status"] or "-",
                _short(r["last_change"]),
                _short(r["last_checked"]),
            ]
            for r in rows
        ],
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _short(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


@cli.command()
@click.argument("nct_id", callback=nct_id_argument)
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(min=1),
    help="How far back the Recent Field Changes section reaches.",
)
@click.option(
    "--front-matter",
    is_flag=True,
    help="Start with the seed's YAML front matter (title, status, sponsor, …) for a mirror site.",
)
@click.pass_obj
def show(state: State, nct_id: str, days: int, front_matter: bool) -> None:
    """A markdown page of the trial's latest version and its recent field changes."""
    from watcher.views.trial_page import Baseline, render_trial_page

    config = state.config()
    today = datetime.now(UTC).date()
    with open_store(config, read_only=True) as store:
        latest = store.versions.latest(nct_id)
        if latest is None:
            fail(f"{nct_id} has no stored snapshot yet: add it to the watchlist and run `trialwatch check`")
        since = datetime.combine(today - timedelta(days=days), datetime.min.time(), tzinfo=UTC)
        items = store.changes.of(nct_id, since=since)
    first = [i for i in items if i.baseline]
    baseline = Baseline(first[0].detected_at, len(first)) if first else None
    recent = [(i.detected_at, i.change) for i in items if not i.baseline]
    click.echo(
        render_trial_page(
            latest.record,
            recent,
            days=days,
            today=today,
            baseline=baseline,
            front_matter=front_matter,
            last_seen=latest.fetched_at,
        ),
        nl=False,
    )
