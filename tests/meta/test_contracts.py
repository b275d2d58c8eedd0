"""The import contracts mean their names: each one fails when the import it forbids is added.

`lint-imports` (CI) keeps them on `main`; these tests break each one on a copy of the package and
check that `lint-imports` then fails naming it, so a contract that no longer guards anything (a
renamed module, a layer that matches nothing) is caught. The clock, which import rules cannot see
(`datetime` is a value type the pure core needs), is checked by reading the pure code's calls.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PURE = ("detect", "notify/formats")
CLOCKS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "sleep"}

# (contract name as lint-imports prints its start, module to edit, the offending import)
BREAKS = [
    ("Stages import downwards only", "watcher/store/values.py", "from watcher.cycle import report"),
    ("Views, discovery and backfill are independent", "watcher/backfill.py", "import watcher.views.feeds"),
    ("The detection core is pure", "watcher/detect/diff.py", "import logging"),
    ("The detection core is pure", "watcher/detect/fields.py", "import time"),
    ("Message formats are pure", "watcher/notify/formats/text.py", "import logging"),
    ("Message formats are pure", "watcher/notify/formats/chat.py", "from watcher.store import outbox"),
    ("Message formats are pure", "watcher/notify/formats/mail.py", "from watcher.config import load_config"),
    ("Routing is pure", "watcher/notify/routing.py", "import time"),
    ("Routing is pure", "watcher/notify/discovery.py", "from watcher.store.outbox import OutboxQueue"),
]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": str(lint.parent)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contracts")
    shutil.copytree(REPO / "watcher", root / "watcher", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.slow
@pytest.mark.parametrize(("contract", "module", "line"), BREAKS, ids=[f"{c[:24]}:{line}" for c, _, line in BREAKS])
def test_each_contract_fails_when_broken(package_copy: Path, contract: str, module: str, line: str) -> None:
    target = package_copy / module
    original = target.read_text(encoding="utf-8")
    target.write_text(original + f"\n{line}  # noqa\n", encoding="utf-8")
    try:
        result = lint_imports(package_copy)
    finally:
        target.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.stdout + result.stderr
    broken = " ".join(result.stdout.split()).split("Contracts:")[0]
    assert f"{contract}" in broken and "BROKEN" in broken, result.stdout


@pytest.mark.slow
def test_the_contracts_hold_on_the_package_as_it_is(package_copy: Path) -> None:
    """The breaking tests above mean something only if the untouched copy passes, naming every contract."""
    result = lint_imports(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    kept = " ".join(result.stdout.split())
    assert all(f"{contract}" in kept for contract, _, _ in BREAKS)


@pytest.mark.parametrize("folder", PURE)
def test_pure_code_never_reads_the_clock(folder: str) -> None:
    """Pure functions take the time they need as an argument, so they are tested without a clock."""
    calls = []
    for module in sorted((REPO / "watcher" / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCKS:
                calls.append(f"{module.relative_to(REPO)}:{node.lineno}: .{node.func.attr}()")
    assert calls == []
