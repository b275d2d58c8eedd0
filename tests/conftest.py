"""Shared fixtures: real local peers (fake API, SMTP, webhook receiver, databases) and a scratch workspace,
all from `tests.support`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import shared

pytest_plugins = [
    "tests.support.fakeapi",
    "tests.support.peers",
    "tests.support.databases",
    "tests.support.workspace",
    "tests.support.web_store",
]


def pytest_configure(config: pytest.Config) -> None:
    """Tests that need real ClinicalTrials.gov data it cannot find are skipped, saying where it looked."""
    shared.skip_when_missing()


def pytest_report_header(config: pytest.Config) -> str:
    found = [str(p) for p in shared.search_path() if p.is_dir()]
    where = ", ".join(found) or "not found (tests that need it are skipped)"
    return f"real ClinicalTrials.gov data: {where}"


@pytest.fixture(autouse=True)
def _real_processes_are_marked_slow(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts a Python process (the CLI, the service, a benchmark) must carry `@pytest.mark.slow`,
    so `-m "not slow"` is the quick in-process suite; this keeps the marks true as tests are added."""
    if request.node.get_closest_marker("slow") is not None:
        return
    started = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        argv = [str(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)]
        if argv and (argv[0] == sys.executable or "python" in Path(argv[0]).name):
            pytest.fail(f"{request.node.nodeid} starts a Python process ({' '.join(argv[:4])} …): mark it slow")
        started(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


@pytest.fixture(autouse=True)
def _logging_restored_after_each_test() -> Iterator[None]:
    """A test that configures logging (a benchmark's `main`, the CLI in-process) points structlog and the
    root logger at the stream of that moment — pytest's capture, closed when the test ends. Restore both,
    so a later test's log line never meets a closed file (`ValueError: I/O operation on closed file`)."""
    import logging

    import structlog

    saved = structlog.get_config()
    handlers = list(logging.getLogger().handlers)
    yield
    structlog.configure(**saved)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
