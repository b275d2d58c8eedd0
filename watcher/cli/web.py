"""The faces of the store one can look at: `serve` (the live web view) and `site build` (the mirror)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from watcher.cli.main import EXIT_USAGE, State, cli, fail, open_store

WEB_EXTRA = "the web view needs the [web] extra: pip install 'trialwatch[web]'"


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: web.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default: web.port, 8080).")
@click.option("--base-path", default=None, help="Path the view is served under, behind a proxy (default: /).")
@click.pass_obj
def serve(state: State, host: str | None, port: int | None, base_path: str | None) -> None:
    """Serve the read-only web view of the store (GET only; the database is opened read-only)."""
    try:
        import uvicorn

        from watcher.web.app import create_app, normal_base
    except ImportError as exc:
        fail(f"{WEB_EXTRA} ({exc})", EXIT_USAGE)
    config = state.config()
    web = config.settings.web
    try:
        base = normal_base(base_path if base_path is not None else web.base_path)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    app = create_app(config, base_path=base or "/")
    where = f"http://{host or web.host}:{port if port is not None else web.port}{base}/"
    click.echo(f"trialwatch: serving {where} (read-only; Ctrl-C stops)", err=True)
    uvicorn.run(
        app,
        host=host or web.host,
        port=port if port is not None else web.port,
        log_level=state.log_level if state.log_level != "debug" else "debug",
        access_log=False,
        server_header=False,
    )


@cli.group()
def site() -> None:
    """The static mirror site: one page per trial, indexes, feeds."""


@site.command("build")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--full", is_flag=True, help="Rewrite every trial's pages, not only those with a new version.")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes that write the trials' pages (a whole-registry site's first build).",
)
@click.pass_obj
def site_build(state: State, directory: Path | None, full: bool, jobs: int) -> None:
    """Write the static site to DIRECTORY (default: site.dir): changed trials' pages, then the indexes."""
    from watcher.views.site import build_site

    config = state.config()
    root = directory or config.settings.site.dir
    if root is None:
        fail("site build: give a DIRECTORY (or set site.dir in the settings)", EXIT_USAGE)
    with open_store(config, read_only=True) as store:
        report = build_site(config, store, root, now=datetime.now(UTC), full=full, jobs=jobs)
    kind = "full" if report.full else "incremental"
    click.echo(
        f"{root}: {kind} build, {report.trials_written} of {report.trials_total} trials written, "
        f"{report.files_written} files"
    )
