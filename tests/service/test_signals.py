"""Signals that land anywhere: a stop signal arriving while the main thread holds the log's lock.

A handler that logged (or set a `threading.Event`) would wait for a lock its own thread holds and
the stop would hang until systemd kills the service. The check runs in a subprocess so that a
regression fails in seconds instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import REPO, Workspace

pytestmark = pytest.mark.slow  # real processes

SCRIPT = textwrap.dedent("""
    import signal, sys, threading
    from pathlib import Path

    import structlog

    from watcher.config import load_config
    from watcher.service.daemon import Service

    held = threading.Lock()  # non-reentrant, like the lock around a log line being written

    class Guarded:
        def msg(self, message):
            with held:
                print(message, flush=True)
        debug = info = warning = error = critical = exception = msg

    structlog.configure(processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
                        logger_factory=lambda *args: Guarded(), cache_logger_on_first_use=False)
    path = Path(sys.argv[1])
    service = Service(load_config(path), path)
    service.install_signal_handlers()
    with held:  # the main thread is in the middle of a log line when the signals land
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
        sys.stdout.write("handlers returned\\n")
    assert service._take_stop_signal()
    print("forced" if service.signals.forced else "not forced", flush=True)
""")


def test_stop_signals_never_wait_for_a_lock_the_main_thread_holds(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=["NCT04728893"])
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(workspace.settings)],
        cwd=REPO,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "handlers returned" in lines
    assert "event='service.stopping' signal='SIGTERM'" in lines, "the stop is logged by the main loop"
    assert lines[-1] == "forced", "a second signal still forces the stop"
