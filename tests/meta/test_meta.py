"""Keep the artefacts honest: the docs document every command and setting, the package keeps its shape."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from watcher.cli.main import cli
from watcher.config.reference import markdown_table, settings_reference
from watcher.config.settings import CHANNEL_KEYS, TOP_KEYS

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
COMMANDS_PAGE = (REPO / "docs" / "reference" / "commands.md").read_text(encoding="utf-8")


def command_names(group: click.Group, prefix: str = "") -> list[str]:
    names: list[str] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names.extend(command_names(command, f"{prefix}{name} "))
        else:
            names.append(f"{prefix}{name}")
    return names


def test_every_command_is_in_the_commands_table() -> None:
    """The table at the top of the commands reference (its full help below it is generated)."""
    table = COMMANDS_PAGE[: COMMANDS_PAGE.index("\n## ")]
    names = command_names(cli)
    assert len(names) >= 18
    missing = [n for n in names if f"`trialwatch {n}" not in table]
    assert missing == []


def test_every_command_has_help_text() -> None:
    def walk(group: click.Group) -> list[tuple[str, click.Command]]:
        out: list[tuple[str, click.Command]] = []
        for name, command in group.commands.items():
            out.append((name, command))
            if isinstance(command, click.Group):
                out.extend(walk(command))
        return out

    assert [name for name, command in walk(cli) if not (command.help or "").strip()] == []


def test_every_settings_section_and_channel_key_is_in_the_generated_reference() -> None:
    """The settings reference is generated at build time (docs/hooks.py) from the keys' definition:
    its marker must stay on the page, the hook in mkdocs.yml, and the table must name every key."""
    page = (REPO / "docs" / "reference" / "settings.md").read_text(encoding="utf-8")
    assert "<!-- generated: settings -->" in page and "<!-- generated: watchlist -->" in page
    assert "docs/hooks.py" in (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    table = markdown_table(settings_reference())
    for key in TOP_KEYS:
        assert re.search(rf"`{key}[.`]", table), key
    for key in CHANNEL_KEYS:
        assert f"`channels.<name>.{key}" in table, key


def test_readme_names_the_test_command_that_ci_runs() -> None:
    """CI runs the README's command whole on the newest Python and dependencies, and all but the
    real-process tests on the oldest Python with the lowest versions (15 minutes on 2 cores)."""
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in README
    runs = [line.strip() for line in ci.splitlines() if line.strip().startswith("python -m pytest")]
    assert runs == ["python -m pytest", 'python -m pytest -m "not slow"'], runs
    newest, lowest = (
        ci.index('source "$WORK/newest/bin/activate"\n  python -m pytest\n'),
        ci.index('source "$WORK/lowest/bin/activate"\n  python -m pytest -m "not slow"'),
    )
    assert 0 < newest < lowest
    assert '--resolution lowest-direct ".[postgres]"' in ci and "python_of 3.13" in ci and "python_of 3.11" in ci


def test_no_third_party_data_is_committed() -> None:
    """Real records, the API spec and captures come from ../shared (tests/support/shared.py), never copies."""
    repo = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "--", "tests/fixtures"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    fetched = [p for p in listed if p.endswith((".json", ".yaml", ".yml")) or "ctg-oas" in p]
    assert fetched == []
    assert "tests/fixtures/first_schema.sqlite.sql" in listed  # the listing worked: our own texts are there


def test_the_module_map_names_every_module() -> None:
    """The architecture page's table is how a newcomer finds code: it must follow the package."""
    section = (REPO / "docs" / "explanation" / "architecture.md").read_text(encoding="utf-8")
    package = Path(__file__).resolve().parents[2] / "watcher"
    modules = sorted(
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if "migrations" not in p.parts and p.name not in {"__init__.py", "__main__.py"}
    )
    missing = [m for m in modules if f"`{m}`" not in section and f"`{m.rsplit('/', 1)[-1]}`" not in section]
    assert not missing, f"modules missing from the module map (docs/explanation/architecture.md): {missing}"


def test_the_package_stays_a_map_of_the_data_flow() -> None:
    """At most 9 modules loose at the top of `watcher/` (the entry points, `backfill`, and the values
    every stage shares: models, messages, errors, ids, files, times), and no module over 450 lines."""
    package = Path(__file__).resolve().parents[2] / "watcher"
    loose = sorted(p.name for p in package.glob("*.py"))
    assert len(loose) <= 9, loose
    long = {
        p.relative_to(package).as_posix(): n
        for p in package.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450
    }
    assert not long, f"split these modules: {long}"


def test_tests_mirror_the_package_and_share_only_through_support() -> None:
    """Test folders follow the package's stage folders; a test module imports shared code only from
    `tests.support` (never another test module or conftest), so any one can be read and run alone."""
    tests = Path(__file__).resolve().parents[1]
    stages = {p.name for p in (tests.parent / "watcher").iterdir() if p.is_dir() and p.name != "__pycache__"}
    stages |= {p.stem for p in (tests.parent / "watcher").glob("*.py") if p.stem not in {"__init__", "__main__"}}
    folders = {p.name for p in tests.iterdir() if p.is_dir() and p.name not in {"__pycache__", "fixtures"}}
    assert folders - stages <= {"support", "fakes", "bench", "meta"}, folders - stages
    assert not list(tests.glob("test_*.py")), "test modules live in the folder of the stage they test"
    wrong = []
    for module in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [f"tests.{a.name}" for a in node.names] if node.module == "tests" else [node.module or ""]
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            wrong += [
                f"{module.relative_to(tests)}: {name}"
                for name in names
                if name.startswith("tests.") and not name.startswith("tests.support")
            ]
    assert wrong == []


def test_no_private_name_is_used_outside_its_module() -> None:
    """A leading underscore means "this module's own": another module needing it means it is public."""
    package = Path(__file__).resolve().parents[2] / "watcher"
    borrowed = [
        f"{module.relative_to(package.parent)}:{node.lineno}: {node.module}.{alias.name}"
        for module in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("watcher")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert borrowed == []
