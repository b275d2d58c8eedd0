"""Keep the front door and the documentation site honest: short README, real message, every page in
the site's navigation, links that lead somewhere, and the tutorial's steps run as written."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.support.fakeapi import FakeCtGov
from tests.support.peers import free_port, wait_until
from tests.support.shared import pairs_dir
from tests.support.workspace import REPO
from watcher.config import load_config
from watcher.config.settings import collect_settings
from watcher.detect import changes_between
from watcher.detect.record import title_of
from watcher.models import Trial
from watcher.notify.payloads import changes_payload, render_text
from watcher.notify.routing import for_stdout

README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = REPO / "docs"


# Pictures of the web view, taken with it; the README shows one before they land in the same merge.
def nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in nav_pages(value)]
    if isinstance(node, list):
        return [page for item in node for page in nav_pages(item)]
    return []


def test_the_readme_is_a_front_door() -> None:
    lines = README.splitlines()
    assert len(lines) <= 200
    assert max(len(line) for line in lines if not line.startswith(("NCT", "Phase", "locations.", "Site "))) <= 120
    assert "python -m pytest" in README and "pip install ." in README


def test_every_relative_link_of_the_readme_leads_to_a_file() -> None:
    links = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) >= 20
    assert [link for link in local if not (REPO / link).exists()] == []


def test_the_readmes_message_is_what_the_code_renders_for_that_real_pair() -> None:
    """The message shown is rendered by today's code from the registry's real pair of versions."""
    folder = pairs_dir() / "NCT07011550"
    old = json.loads((folder / "2025-08-27_2026-02-18.json").read_text(encoding="utf-8"))
    new = json.loads((folder / "2026-02-19_2026-02-19.json").read_text(encoding="utf-8"))
    settings, _ = collect_settings(None, {})
    trial = Trial("NCT07011550")
    notified = for_stdout(trial, changes_between(old, new), settings)
    at = datetime(2026, 2, 19, 6, 0, tzinfo=UTC)
    subject, body = render_text(changes_payload(trial, title_of(new), notified, version=2, detected_at=at), now=at)
    shown = README.split("```text\n", 1)[1].split("```", 1)[0]
    assert shown == f"{subject}\n{body}\n"


def test_every_page_is_in_the_sites_navigation_and_every_entry_exists() -> None:
    config = YAML(typ="safe").load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = nav_pages(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(set(listed)) == pages
    assert len(listed) == len(set(listed)), "a page listed twice"


def test_the_example_configurations_validate() -> None:
    """The container's example files are what `docker compose up` reads first."""
    config = load_config(REPO / "container" / "config" / "trialwatch.yaml")
    assert config.settings.storage_url.startswith("postgresql+psycopg://trialwatch@db:5432/")
    assert len(config.watchlist.trials) == 2


def tutorial_receiver(port: int) -> str:
    page = (DOCS / "tutorial" / "getting-started.md").read_text(encoding="utf-8")
    code = page.split("```python\n# receiver.py", 1)[1].split("```", 1)[0]
    assert '("127.0.0.1", 8085)' in code
    return "# receiver.py" + code.replace('("127.0.0.1", 8085)', f'("127.0.0.1", {port})')


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def trialwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), "TRIALWATCH_CONFIG": ""},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path: Path, fake_api: FakeCtGov) -> None:
    """The offline path: the page's receiver, `init`, a silent first check, an edit, an alert."""
    port = free_port()
    (tmp_path / "receiver.py").write_text(tutorial_receiver(port), encoding="utf-8")
    with subprocess.Popen(
        [sys.executable, "receiver.py"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as receiver:
        try:
            wait_until(lambda: listening(port), timeout=20)
            hook = f"json://127.0.0.1:{port}/hook"
            made = trialwatch(
                "init", "tw", "--trial", "NCT04728893", "--channel", hook, "--api-url", fake_api.base_url, cwd=tmp_path
            )
            assert made.returncode == 0, made.stderr
            assert "  trialwatch --config tw/trialwatch.yaml check" in made.stdout.splitlines()
            assert trialwatch("--config", "tw/trialwatch.yaml", "check", cwd=tmp_path).returncode == 0
            fake_api.update(
                "NCT04728893",
                lambda s: s["protocolSection"]["statusModule"].update(
                    overallStatus="SUSPENDED", whyStopped="Sponsor decision"
                ),
            )
            second = trialwatch("--config", "tw/trialwatch.yaml", "check", cwd=tmp_path)
            assert second.returncode == 0, second.stderr
        finally:
            receiver.terminate()
        out, _ = receiver.communicate(timeout=20)
    page = (DOCS / "tutorial" / "getting-started.md").read_text(encoding="utf-8")
    shown = page.split("The receiver prints the message (offline case shown):\n\n```text\n", 1)[1].split("```", 1)[0]
    assert out.strip() == shown.strip()
