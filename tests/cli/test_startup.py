"""`--help` and `--version` start without the heavy imports: every command imports what it needs itself;
`status` and `list`, which only read the store, import neither apprise, structlog, Alembic nor DeepDiff.

Not a timed test (benchmarks print times: `python -m bench.bench_cycle` reports a bare start); what is
checked is which modules a bare start loads, so a top-level import that drags in the store or the
configuration shows up here, whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "structlog", "ruamel", "yaml", "deepdiff", "apprise", "httpx", "watcher.config", "watcher.store")

PROBE = """
import json, sys
from watcher.cli.main import cli
try:
    cli.main(args=sys.argv[1:], prog_name="trialwatch", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.slow  # a fresh interpreter: only there are the imports a start pays visible
@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_a_bare_start_imports_none_of_the_heavy_modules(argv: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert "watcher.cli.main" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == [], f"imported by a bare start: {heavy}"


# What `status` and `list` must not pay for: apprise's plugins (channel URLs are not looked up to show
# what is stored), structlog (they log nothing), Alembic (the schema revision is one query), DeepDiff
# (nothing is diffed), the web view, the registry client.
NOT_READ = ("apprise", "structlog", "alembic", "deepdiff", "jinja2", "httpx", "watcher.cycle", "watcher.registry")


@pytest.mark.slow  # a fresh interpreter, as above
@pytest.mark.parametrize("command", ["status", "list"])
def test_status_and_list_import_only_what_they_read(tmp_path: Path, command: str) -> None:
    from watcher.store import Store

    url = f"sqlite:///{tmp_path / 'trialwatch.sqlite'}"
    Store(url).close()  # a current schema, as a service leaves it
    (tmp_path / "watchlist.yaml").write_text("trials:\n  - NCT00000102  # a comment\n", encoding="utf-8")
    settings = tmp_path / "trialwatch.yaml"
    settings.write_text(
        "watchlist: watchlist.yaml\n"
        f"storage:\n  url: {url}\n"
        "channels:\n  team:\n    url: json://127.0.0.1:9/hook\n    digest: '0 8 * * 1-5'\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRIALWATCH_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--config", str(settings), command],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert "NCT00000102" in done.stdout or "trials watched: 1" in done.stdout, done.stdout
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    found = sorted(m for m in loaded if m.split(".")[0] in NOT_READ or m.startswith(NOT_READ))
    assert found == [], f"imported by `{command}`: {found}"
