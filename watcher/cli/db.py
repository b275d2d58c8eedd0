"""The database: `db upgrade`, `db stats`, `db prune`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from watcher.cli.main import State, cli, fail, open_store


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
    with Store(config.settings.storage_url, create=False) as store:
        before = store.schema_revision()
        applied = store.upgrade()
        after = store.schema_revision()
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
    """Versions stored and the bytes they take (compressed, deduplicated), per trial and in all."""
    config = state.config()
    with open_store(config, read_only=True) as store:
        damaged = store.integrity(quick=True)  # figures read off a damaged file would be wrong or crash
        if damaged:
            from watcher.store.connection import redact_db_url

            fail(
                f"the database {redact_db_url(store.url)} is damaged (PRAGMA quick_check: {damaged[0]}); "
                "restore it from a backup (`trialwatch doctor` runs the full check)"
            )
        stats = store.retention.stats()
        revision = store.schema_revision()
    data = {
        "revision": revision,
        "trials": stats.trials,
        "versions": stats.versions,
        "pruned": stats.pruned,
        "baselines": stats.baselines,
        "change_rows": stats.change_rows,
        "blobs": stats.blobs,
        "blob_bytes": stats.blob_bytes,
        "raw_bytes": stats.raw_bytes,
        "legacy_bytes": stats.legacy_bytes,
        "bytes_per_trial": stats.bytes_per_trial,
        "bytes_per_version": (stats.blob_bytes + stats.legacy_bytes) // stats.versions if stats.versions else 0,
        "stored_of_raw": round(stats.blob_bytes / stats.raw_bytes, 4) if stats.raw_bytes else None,
        "database_bytes": stats.database_bytes,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        click.echo(f"{key + ':':<19}{value}")


@db.command("prune")
@click.pass_obj
def db_prune(state: State) -> None:
    """Apply storage.keep_versions / storage.keep_days now (the service does it daily)."""
    config = state.config()
    settings = config.settings
    with open_store(config) as store:
        result = store.retention.apply(
            keep_versions=settings.keep_versions, keep_days=settings.keep_days, now=datetime.now(UTC)
        )
    click.echo(
        f"pruned {result.pruned} versions, deleted {result.blobs_deleted} blobs "
        f"({result.bytes_freed} bytes); kept {result.kept_for_outbox} for undelivered notifications"
    )
