"""A settings file and watchlist in a temporary directory, wired to the fake API; the CLI run in-process
or as a real process against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

if TYPE_CHECKING:
    from tests.support.fakeapi import FakeCtGov
    from watcher.store import Store

REPO = Path(__file__).resolve().parents[2]
# our own texts only; third-party data (real records, the API spec) comes through tests/support/shared.py
FIXTURES = REPO / "tests" / "fixtures"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Workspace:
    """A settings file + watchlist in a temporary directory, wired to the fake API."""

    root: Path
    api_url: str
    _stores: list[Store] = field(default_factory=list)

    @property
    def settings(self) -> Path:
        return self.root / "trialwatch.yaml"

    @property
    def watchlist(self) -> Path:
        return self.root / "watchlist.yaml"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'state' / 'trialwatch.sqlite'}"

    def write(
        self,
        *,
        trials: Sequence[str | dict[str, Any]] = (),
        channels: dict[str, Any] | None = None,
        extra: str = "",
        api: dict[str, Any] | None = None,
        storage_url: str | None = None,
        interval: str = "1h",
    ) -> None:
        lines = [
            "watchlist: watchlist.yaml",
            "state_dir: state",
            "api:",
            f"  base_url: {self.api_url}",
            "  requests_per_second: 0",
            "  timeout: 5",
            *(f"  {key}: {json.dumps(value)}" for key, value in (api or {}).items()),
            "storage:",
            f"  url: {storage_url or self.db_url}",
            "schedule:",
            f"  interval: {interval}",
        ]
        if channels:
            lines.append("channels:")
            for name, spec in channels.items():
                lines.append(f"  {name}:")
                for key, value in spec.items():
                    lines.append(f"    {key}: {json.dumps(value)}")
        self.settings.write_text("\n".join(lines) + "\n" + textwrap.dedent(extra))
        items = []
        for trial in trials:
            items.append(f"  - {trial}" if isinstance(trial, str) else f"  - {json.dumps(trial)}")
        self.watchlist.write_text("trials:\n" + ("\n".join(items) + "\n" if items else "  []\n"))

    def store(self, url: str | None = None, *, create: bool = True) -> Store:
        """A Store on this workspace's database (or `url`), closed when the test ends."""
        from watcher.store import Store

        store = Store(url or self.db_url, create=create)
        self._stores.append(store)
        return store

    def close(self) -> None:
        while self._stores:
            self._stores.pop().close()

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run the CLI in-process (fast); logs go to stderr as JSON."""
        runner = CliRunner()
        from watcher.cli.main import cli

        result = runner.invoke(
            cli, ["--config", str(self.settings), "--log-format", "json", *args], env=env, catch_exceptions=False
        )
        return Result(result.exit_code, result.stdout, result.stderr)

    def process(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        """Run `python -m watcher` as a real process, as a user or systemd would."""
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "watcher", "--config", str(self.settings), *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def workspace(tmp_path: Path, fake_api: FakeCtGov) -> Iterator[Workspace]:
    ws = Workspace(tmp_path, fake_api.base_url)
    ws.write()
    yield ws
    ws.close()
