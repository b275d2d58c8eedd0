"""Logging: JSON with journald priority prefixes under systemd, a console on a terminal, JSON otherwise."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
from pathlib import Path

import structlog

from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.cycle import Cycle
from watcher.registry.client import CtGovClient
from watcher.service.logs import choose_format, configure, connected_to_journal
from watcher.store import Store


def _journal_stream_of(handle: io.TextIOWrapper) -> str:
    st = os.fstat(handle.fileno())
    return f"{st.st_dev}:{st.st_ino}"


def test_journald_only_when_stderr_is_the_journal_stream(tmp_path: Path) -> None:
    with (tmp_path / "journal").open("w") as journal, (tmp_path / "other").open("w") as other:
        env = {"JOURNAL_STREAM": _journal_stream_of(journal)}
        assert connected_to_journal(journal, env)
        assert choose_format(journal, env) == "journald"
        # inherited the variable, but stderr now goes elsewhere: no <N> prefixes in that file
        assert not connected_to_journal(other, env)
        assert choose_format(other, env) == "json"
        assert choose_format(journal, {"JOURNAL_STREAM": "garbage"}) == "json"
        assert choose_format(io.StringIO(), env) == "json"


def test_console_on_a_terminal() -> None:
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as tty:
        assert choose_format(tty, {}) == "console"
    os.close(leader)


def test_journald_lines_carry_the_priority_prefix_for_ours_and_library_records() -> None:
    out = io.StringIO()
    try:
        configure("info", "journald", stream=out)
        structlog.get_logger("watcher.test").warning("cycle.api_failed", consecutive=2)
        structlog.get_logger("watcher.test").info("cycle.done", checked=3)
        logging.getLogger("apscheduler.executors.default").warning("Run time of job was missed by 0:00:05")
        logging.getLogger("apscheduler.scheduler").info("Added job")  # library chatter below warning: dropped
    finally:
        configure("info", "json", stream=io.StringIO())
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("<4>{") and json.loads(lines[0][3:])["event"] == "cycle.api_failed"
    assert lines[1].startswith("<6>{") and json.loads(lines[1][3:])["checked"] == 3
    assert lines[2].startswith("<4>{")
    record = json.loads(lines[2][3:])
    assert record["event"] == "Run time of job was missed by 0:00:05"
    assert record["logger"] == "apscheduler.executors.default"


def test_the_cycle_event_is_one_rich_record(workspace: Workspace) -> None:
    workspace.write(trials=["NCT04728893", "NCT03418623"])
    config = load_config(workspace.settings)
    with (
        Store(config.settings.storage_url) as store,
        CtGovClient(config.settings.api) as client,
        structlog.testing.capture_logs() as logs,
    ):
        Cycle(config, store, client, write=lambda _: None).run()
    done = [e for e in logs if e["event"] == "cycle.done"]
    assert len(done) == 1
    assert done[0]["checked"] == 2 and done[0]["changed"] == 0 and done[0]["failed"] == 0
    assert done[0]["requests"] >= 2 and done[0]["duration_s"] >= 0 and done[0]["result"] == "ok"
