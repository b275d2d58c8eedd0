"""The `trialwatch` command: the only place that parses argv and picks exit codes.

Exit codes: 0 ok, 1 runtime failure (a trial or the API failed), 2 usage or configuration error.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from watcher import __version__
from watcher.errors import ConfigError, StorageError

if TYPE_CHECKING:  # every import a command needs is made inside it: `--help` and `--version` start fast
    from watcher.config import Config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

QUIET = frozenset({"status", "list"})
"""Commands that log nothing (they read the store and print): structlog, ~0.1 s of imports, is not
set up for them. `tests/cli/test_startup.py` checks that they never import it."""


def nct_id_argument(_ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Callback of an NCT ID argument (one or several): the full form in any case, given back
    canonical; a typo is a usage error (exit 2) that names it."""
    from watcher.ids import FULL_FORM, is_nct_id, normalize_nct_id

    values = value if isinstance(value, tuple) else (value,)
    for raw in values:
        if not is_nct_id(str(raw)):
            raise click.BadParameter(f"{raw!r} is not an NCT ID ({FULL_FORM})", param=param)
    canonical = tuple(normalize_nct_id(str(raw)) for raw in values)
    return canonical if isinstance(value, tuple) else canonical[0]


class State:
    """What the group options decided, handed to every command."""

    def __init__(self, config_path: str | None, log_level: str, log_format: str | None) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.log_format = log_format
        self._config: Config | None = None

    @property
    def path(self) -> Path | None:
        from watcher.config import resolve_config_path

        return resolve_config_path(self.config_path)

    def config(self, *, missing_watchlist_ok: bool = False, look_up: bool = True) -> Config:
        """The configuration; a command that creates the watchlist (`add`) accepts it missing, one
        that only shows what is stored (`list`) skips looking channel URLs up (`load_config`)."""
        from watcher.config import load_config

        if self._config is None:
            try:
                self._config = load_config(self.path, missing_watchlist_ok=missing_watchlist_ok, look_up=look_up)
            except ConfigError as exc:
                fail(str(exc), EXIT_USAGE)
        return self._config


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"trialwatch: {message}", err=True)
    sys.exit(code)


@contextmanager
def open_store(config: Config, *, read_only: bool = False) -> Iterator[Any]:
    """The store, opened for writing (created and upgraded as needed). `read_only` commands (status,
    list, show, history, changes…) never create nor upgrade a database: one that is not there is an
    error naming where it was looked for, never a new empty one answering wrongly. A storage failure,
    here or later, reaches the user through `Commands.invoke`."""
    from watcher.store import Store
    from watcher.store.connection import sqlite_path

    url = config.settings.storage_url
    database = sqlite_path(url)
    if read_only and database is not None and not database.exists():
        raise StorageError(f"no database at {database}; run `trialwatch check` first")
    with Store(url, read_only=read_only) as store:
        yield store


class Commands(click.Group):
    """The `trialwatch` group. A storage failure in any command (the database gone, locked, full,
    damaged, unreadable, its server unreachable) is one line on stderr and exit 1, never a traceback:
    the store's errors already say what failed, in which database and what to do."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StorageError as exc:
            fail(" ".join(line.strip() for line in str(exc).splitlines() if line.strip()))


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar="TRIALWATCH_CONFIG",
    help="Settings file (default: $TRIALWATCH_CONFIG, else ./trialwatch.yaml, else built-in defaults).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Minimum level logged to stderr.",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json", "journald"]),
    help="Default: journald under systemd, console on a terminal, JSON otherwise.",
)
@click.version_option(__version__, prog_name="trialwatch")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str, log_format: str | None) -> None:
    """Watch ClinicalTrials.gov trials and report, field by field, what changed."""
    if ctx.invoked_subcommand not in QUIET:
        from watcher.service.logs import configure

        configure(log_level, log_format)
    ctx.obj = State(config_path, log_level, log_format)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="trialwatch")


# The commands register themselves on `cli` as their modules are imported.
from watcher.cli import db, doctor, history, init, notify, search, service, watchlist, web  # noqa: E402, F401
