"""`serve` without the [web] extra says what to install; `site build` needs a folder; `--help` stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.workspace import REPO
from watcher.cli.main import cli


def test_serve_without_the_web_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the extra were not installed
    (tmp_path / "trialwatch.yaml").write_text("watchlist: w.yaml\n", encoding="utf-8")
    (tmp_path / "w.yaml").write_text("trials: []\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "trialwatch.yaml"), "serve"])
    assert result.exit_code == 2
    assert "pip install 'trialwatch[web]'" in result.stderr


def test_site_build_without_a_folder_or_setting_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "trialwatch.yaml").write_text("watchlist: w.yaml\n", encoding="utf-8")
    (tmp_path / "w.yaml").write_text("trials: []\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "trialwatch.yaml"), "site", "build"])
    assert result.exit_code == 2
    assert "give a DIRECTORY (or set site.dir" in result.stderr


@pytest.mark.slow  # a fresh interpreter: what `trialwatch --help` imports
def test_the_cli_does_not_import_the_web_stack_until_serve_runs() -> None:
    code = (
        "import sys; from watcher.cli.main import main\n"
        "try: main(['--help'])\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'watcher.web.app') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
