"""`--help` and `--version` start without the heavy imports: every command imports what it needs itself.

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
