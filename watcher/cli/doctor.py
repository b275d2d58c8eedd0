"""`trialwatch doctor`: check, against the live service, every assumption the poller makes about it."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from watcher.cli.main import EXIT_FAILED, State, cli, nct_id_argument, open_store


def _optional_id(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    return None if value is None else nct_id_argument(ctx, param, value)


@cli.command("doctor")
@click.option(
    "--study",
    metavar="NCT",
    callback=_optional_id,
    default=None,
    help="The study whose record history is checked (default: the first watched one that answers).",
)
@click.option(
    "--alias",
    metavar="NCT",
    callback=_optional_id,
    default=None,
    help="An alias NCT ID expected to answer 301 (default: one found in the answers, else NCT00009113).",
)
@click.pass_obj
def doctor(state: State, study: str | None, alias: str | None) -> None:
    """Check the ClinicalTrials.gov API as the poller uses it; one line per check (exit 1 if any failed)."""
    from watcher.config.secrets import without_credentials
    from watcher.registry.client import CtGovClient
    from watcher.registry.doctor_run import Plan, run
    from watcher.registry.record_history import history_base

    config = state.config()
    plan = Plan(known=[t.nct_id for t in config.watchlist.trials], study=study, alias=alias)
    click.echo(f"ClinicalTrials.gov at {without_credentials(config.settings.api.base_url)}")
    with CtGovClient(config.settings.api) as client:
        checks = run(client.transport, lambda: history_base(config), plan, today=datetime.now(UTC).date())
        requests = client.requests_made
    for check in checks:
        click.echo(f"{'ok' if check.ok else 'FAILED':<6} {check.name:<16} {check.evidence}")
    failed = [c.name for c in checks if not c.ok]
    if not _database_sound(config):
        failed.append("database")
    click.echo(
        f"{len(checks)} checks, {requests} requests: "
        + (f"{len(failed)} failed ({', '.join(failed)})" if failed else "all ok")
    )
    if failed:
        sys.exit(EXIT_FAILED)


def _database_sound(config: Any) -> bool:
    """SQLite's full `PRAGMA integrity_check` of the database (PostgreSQL checks its own pages)."""
    from watcher.errors import StorageError
    from watcher.store.connection import redact_db_url, sqlite_path

    database = sqlite_path(config.settings.storage_url)
    if database is None or not database.exists():
        return True
    try:
        with open_store(config, read_only=True) as store:
            problems = store.integrity()
    except StorageError as exc:
        problems = [str(exc)]
    where = redact_db_url(config.settings.storage_url)
    shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
    click.echo(f"{'FAILED' if problems else 'ok':<6} {'database':<16} {where}: " + (shown or "integrity_check ok"))
    return not problems
