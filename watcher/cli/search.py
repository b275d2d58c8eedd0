"""Saved searches: `search add`, `search remove`, `search list`, `search preview`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from watcher.cli.main import EXIT_USAGE, State, cli, fail, open_store
from watcher.errors import ConfigError, TrialWatchError


def _pairs(values: Sequence[str], option: str) -> dict[str, Any]:
    """`-q cond="type 1 diabetes" -f overallStatus=RECRUITING,NOT_YET_RECRUITING` → a mapping."""
    out: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip() or not text.strip():
            fail(f'{option} {value!r}: expected KEY=VALUE, e.g. {option} cond="type 1 diabetes"', EXIT_USAGE)
        parts = [p.strip() for p in text.split(",")] if key.strip() == "overallStatus" else [text.strip()]
        out[key.strip()] = parts if len(parts) > 1 else parts[0]
    return out


def _near(value: str | None) -> dict[str, float] | None:
    if value is None:
        return None
    try:
        lat, lon, km = (float(v) for v in value.split(","))
    except ValueError:
        fail(f"--near {value!r}: expected LAT,LON,KM, e.g. --near 42.36,-71.06,100", EXIT_USAGE)
    return {"lat": lat, "lon": lon, "km": km}


@cli.group()
def search() -> None:
    """Saved searches: new studies matching a query are announced once (and watched with --watch)."""


_query = click.option(
    "-q",
    "--query",
    "query",
    multiple=True,
    metavar="KEY=VALUE",
    help="A query.* parameter: cond, term, intr, titles, outc, spons, lead, id, locn, patient.",
)
_filter = click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="A filter.* parameter: overallStatus (comma-separated), geo, advanced, ids, synonyms.",
)
_near_option = click.option("--near", metavar="LAT,LON,KM", help="Only studies with a site within KM (filter.geo).")


@search.command("add")
@click.argument("name")
@_query
@_filter
@_near_option
@click.option("--watch", is_flag=True, help="Also poll every match like a listed trial, tagged NAME.")
@click.option("--channel", "channels", multiple=True, metavar="NAME", help="Announce to these channels only.")
@click.option(
    "--min-severity",
    type=click.Choice(["minor", "major", "critical"]),
    help="For watched matches: the least severe change notified.",
)
@click.option(
    "--since",
    type=click.Choice(["posted", "matching"]),
    default=None,
    help="posted (default): studies first posted since the last run; matching: also older studies "
    "updated into a match.",
)
@click.option("--replace", is_flag=True, help="Replace a search of the same name.")
@click.pass_obj
def search_add(
    state: State,
    name: str,
    query: tuple[str, ...],
    filters: tuple[str, ...],
    near: str | None,
    *,
    watch: bool,
    channels: tuple[str, ...],
    min_severity: str | None,
    since: str | None,
    replace: bool,
) -> None:
    """Add a saved search to the watchlist; its first run records the current matches without announcing them."""
    from watcher.cli.watchlist import edit_watchlist
    from watcher.config.search_edit import add_search

    node: dict[str, Any] = {
        "name": name,
        "query": _pairs(query, "-q"),
        "filter": _pairs(filters, "-f"),
        "near": _near(near),
        "watch": True if watch else None,
        "channels": list(channels) or None,
        "min_severity": min_severity,
        "since": since,
    }
    result = edit_watchlist(state, lambda text, path, names: add_search(text, path, node, names, replace=replace))
    if result.skipped:
        fail(f"a search named {name!r} exists; use --replace to change it", EXIT_USAGE)
    click.echo(
        f"{state.config().watchlist.path.resolve()}: search {name!r} added; its first run is a baseline "
        f"(`trialwatch search preview {name}` shows what it matches now)"
    )


@search.command("remove")
@click.argument("name")
@click.option("--forget", is_flag=True, help="Also forget its recorded matches (re-adding it starts a new baseline).")
@click.pass_obj
def search_remove(state: State, name: str, forget: bool) -> None:
    """Remove a saved search; the trials it watched stop being polled (their history is kept)."""
    from watcher.cli.watchlist import edit_watchlist
    from watcher.config.search_edit import remove_search
    from watcher.store.meta import SEARCH

    result = edit_watchlist(state, lambda text, path, names: remove_search(text, path, name, names))
    if result.skipped:
        fail(f"no search named {name!r} in the watchlist", EXIT_USAGE)
    note = ""
    if forget:
        with open_store(state.config()) as store:
            note = f", {store.discovery.forget_search(name)} recorded matches forgotten"
            store.meta.set(SEARCH.of(name), None)
    click.echo(f"{state.config().watchlist.path.resolve()}: search {name!r} removed{note}")


@search.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def search_list(state: State, as_json: bool) -> None:
    """The saved searches: query, whether matches are watched, matches recorded, last run."""
    from watcher.store.meta import SEARCH

    config = state.config()
    rows: list[dict[str, Any]] = []
    with open_store(config, read_only=True) as store:
        for s in config.watchlist.searches:
            run = store.meta.get(SEARCH.of(s.name))
            rows.append(
                {
                    "name": s.name,
                    "params": s.params(),
                    "watch": s.watch,
                    "channels": list(s.channels) if s.channels is not None else None,
                    "matches": len(store.discovery.matched(s.name)),
                    "last_run": run.stamp if run is not None else None,
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(
            f"No searches in {config.watchlist.path}. Add one with: "
            'trialwatch search add t1d -q cond="type 1 diabetes" -q intr=CAR-T'
        )
        return
    for r in rows:
        params = " ".join(f"{k}={v!r}" for k, v in r["params"].items())
        click.echo(f"{r['name']}: {params}")
        click.echo(
            f"  {'watched' if r['watch'] else 'announced only'}, {r['matches']} matches recorded, "
            f"last run at data {r['last_run'] or 'never'}"
        )


@search.command("show")
@click.argument("name")
@click.option("--all", "with_baseline", is_flag=True, help="Also the matches its first run recorded (its baseline).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_obj
def search_show(state: State, name: str, with_baseline: bool, as_json: bool) -> None:
    """The studies a saved search announced (newest last): found again after the message is gone, whether or
    not the search watches them. A search removed with its matches kept is shown too."""
    from watcher.models import study_url

    config = state.config()
    with open_store(config, read_only=True) as store:
        matches = store.discovery.matches([name])
    if not matches and name not in {s.name for s in config.watchlist.searches}:
        fail(f"no search named {name!r} in {config.watchlist.path}, and no match recorded for one", EXIT_USAGE)
    shown = [m for m in matches if with_baseline or not m.baseline]
    if as_json:
        rows = [
            {
                "nct_id": m.nct_id,
                "title": m.title,
                "first_seen_at": m.first_seen_at.isoformat(),
                "baseline": m.baseline,
                "url": study_url(m.nct_id),
            }
            for m in shown
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for m in shown:
        how = "baseline" if m.baseline else "announced"
        title = "".join(c if c.isprintable() else " " for c in m.title or "")  # third-party text, on a terminal
        click.echo(f"{m.first_seen_at:%Y-%m-%d %H:%M}  {m.nct_id}  {how:<9}  {title}  {study_url(m.nct_id)}")
    baseline = sum(1 for m in matches if m.baseline)
    announced = len(matches) - baseline
    hidden = "" if with_baseline or not baseline else " (--all shows those too)"
    click.echo(f"{name!r}: {announced} announced, {baseline} recorded by its first run{hidden}")


@search.command("preview")
@click.argument("name", required=False)
@_query
@_filter
@_near_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="Matches printed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_obj
def search_preview(
    state: State,
    name: str | None,
    query: tuple[str, ...],
    filters: tuple[str, ...],
    *,
    near: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Print what a saved search (NAME) or a query (-q/-f) matches now; nothing is saved or announced."""
    from watcher.config.searches import parse_searches
    from watcher.config.yamlcheck import Validator
    from watcher.discovery import preview
    from watcher.registry.client import CtGovClient

    config = state.config()
    if name and not (query or filters or near):
        chosen = next((s for s in config.watchlist.searches if s.name == name), None)
        if chosen is None:
            fail(f"no search named {name!r} in {config.watchlist.path}; give -q/-f to try a query", EXIT_USAGE)
    else:
        validator = Validator("<command line>")
        node = {
            "name": name or "preview",
            "query": _pairs(query, "-q") or None,
            "filter": _pairs(filters, "-f") or None,
            "near": _near(near),
        }
        found = parse_searches({"searches": [node]}, validator, list(config.settings.channels))
        if validator.problems or not found:
            fail(str(ConfigError(validator.problems)), EXIT_USAGE)
        chosen = found[0]
    client = CtGovClient(config.settings.api)
    try:
        matches = list(preview(client, chosen))
    except TrialWatchError as exc:
        fail(f"search failed: {exc}")
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(matches[:limit], indent=2, ensure_ascii=False))
        return
    for facts in matches[:limit]:
        near_text = f" — nearest site {facts['nearest']}" if facts.get("nearest") else ""
        click.echo(
            f"{facts['nct_id']}  {facts['status']}  {facts['phase']}  {facts['sponsor']}: "
            f"{facts['title']} ({facts['sites']} sites){near_text}"
        )
    more = f", {limit} shown" if len(matches) > limit else ""
    count = "1 study matches" if len(matches) == 1 else f"{len(matches)} studies match"
    click.echo(f"{count} {chosen.name!r} now{more} (nothing saved)")
