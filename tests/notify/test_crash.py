"""kill -9 at every point of delivery, then restart: each message arrives exactly once,
or — killed after the channel accepted and before the mark — once more, as documented."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.databases import sqlite_file
from tests.support.edits import CHANGED, edit_trial
from tests.support.fakeapi import FakeCtGov
from tests.support.peers import SmtpServer, WebhookReceiver, wait_until
from tests.support.workspace import REPO, Workspace

pytestmark = pytest.mark.slow


def crash_at(workspace: Workspace, point: str) -> str:
    """Run `check` as a real process, kill -9 it at `point`; returns its log output."""
    marker = workspace.root / f"{point}.pid"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.crashpoint",
            point,
            str(marker),
            "--",
            "--config",
            str(workspace.settings),
            "--log-format",
            "json",
            "check",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(marker.exists, timeout=60)
        assert int(marker.read_text()) == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return err


def prepare(workspace: Workspace, fake_api: FakeCtGov, smtp: SmtpServer, webhook: WebhookReceiver) -> None:
    workspace.write(
        trials=[{"id": CHANGED, "label": "Nemtabrutinib CLL"}],
        channels={"email": {"url": smtp.url()}, "hook": {"url": webhook.url()}},
    )
    baseline = workspace.process("check")
    assert baseline.code == 0, baseline.err
    fake_api.update(CHANGED, edit_trial)


def outbox_rows(workspace: Workspace) -> list[tuple[int, str, str, int]]:
    with sqlite_file(workspace.root / "state" / "trialwatch.sqlite") as db:
        return list(db.execute("SELECT id, channel, status, attempts FROM outbox ORDER BY id"))


def events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("point", ["after_commit", "before_send"])
def test_killed_before_the_channel_accepted_every_message_arrives_exactly_once(
    point: str,
    workspace: Workspace,
    fake_api: FakeCtGov,
    smtp_server: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    prepare(workspace, fake_api, smtp_server, webhook)
    crash_at(workspace, point)
    assert smtp_server.messages == [] and webhook.requests == []
    left = [r[2] for r in outbox_rows(workspace)]
    if point == "after_commit":
        assert left == ["pending", "pending"]
    else:  # each channel has its own worker: either (or both) may have claimed its message first
        assert "sending" in left and set(left) <= {"pending", "sending"}
    # No wait for the claim's lease (notify.claim_timeout, 5 min): the claim names a process that is
    # gone, so the restart takes it over at once.
    restart = workspace.process("--log-format", "json", "check")
    assert restart.code == 0, restart.err
    assert len(smtp_server.messages) == 1
    assert len(webhook.requests) == 1
    assert (
        "status.overallStatus: RECRUITING → SUSPENDED"
        in smtp_server.messages[0].get_body(preferencelist=("plain",)).get_content()
    )  # type: ignore[union-attr]
    assert webhook.requests[0].json()["trial"]["nct_id"] == CHANGED
    assert [r[2] for r in outbox_rows(workspace)] == ["sent", "sent"]
    recovered = [e for e in events(restart.err) if e["event"] == "notify.recovered"]
    assert len(recovered) == left.count("sending"), "every claim the dead process held is recovered, once"
    assert all(e["attempt"] == 1 for e in recovered), "the interrupted send is not counted as a refusal"
    assert [r[3] for r in outbox_rows(workspace)] == [1, 1]
    again = workspace.process("check")
    assert again.code == 0
    assert (len(smtp_server.messages), len(webhook.requests)) == (1, 1)


def test_after_a_kill_mid_send_the_channel_queue_goes_out_at_once_on_restart(
    workspace: Workspace,
    fake_api: FakeCtGov,
    smtp_server: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    """The claim's lease is 5 minutes; the restart neither waits for it nor counts the cut-off send."""
    from datetime import UTC, datetime

    from watcher.messages import AlertPayload, NewMessage
    from watcher.store import Store

    prepare(workspace, fake_api, smtp_server, webhook)
    crash_at(workspace, "before_send")
    with Store(f"sqlite:///{workspace.root / 'state' / 'trialwatch.sqlite'}") as store:
        store.outbox.enqueue(
            [NewMessage("email", AlertPayload(subject="behind it", text="t"))],
            datetime.now(UTC),
        )
    started = time.monotonic()
    restart = workspace.process("--log-format", "json", "check")
    took = time.monotonic() - started
    assert restart.code == 0, restart.err
    assert [m["Subject"].split()[0] for m in smtp_server.messages] == [CHANGED, "behind"], "in order"
    assert [r[2:] for r in outbox_rows(workspace) if r[1] == "email"] == [("sent", 1), ("sent", 1)]
    failed = [e for e in events(restart.err) if e["event"] in ("notify.failed", "notify.channel_busy")]
    assert failed == []
    print(
        f"\n[timings] restart after a kill mid-send: the email queue (2 messages) delivered by a check taking "
        f"{took:.2f} s (the dead claim's lease had 5 min to run)"
    )


def test_killed_between_acceptance_and_mark_sends_that_one_message_once_more(
    workspace: Workspace,
    fake_api: FakeCtGov,
    smtp_server: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    prepare(workspace, fake_api, smtp_server, webhook)
    crash_at(workspace, "before_mark")
    assert len(smtp_server.messages) == 1, "the email was accepted just before the kill"
    # The webhook has its own worker: it may or may not have been delivered (and marked) by then.
    assert outbox_rows(workspace)[0][2] == "sending"
    hook_at_kill = [r[2] for r in outbox_rows(workspace) if r[1] == "hook"]
    hook_in_window = hook_at_kill == ["sending"] and len(webhook.requests) == 1  # accepted, not yet marked

    restart = workspace.process("--log-format", "json", "check")
    assert restart.code == 0, restart.err
    # The documented window: a message in flight arrives a second time; nothing else does.
    assert len(smtp_server.messages) == 2
    first, second = (m.get_body(preferencelist=("plain",)).get_content() for m in smtp_server.messages)  # type: ignore[union-attr]
    assert first == second
    if hook_in_window:  # the webhook's worker was in the same window: sent again under the same key
        assert len(webhook.requests) == 2
        keys = [v for r in webhook.requests for k, v in r.headers.items() if k.lower() == "idempotency-key"]
        assert len(keys) == 2 and keys[0] == keys[1]
    else:
        assert len(webhook.requests) == 1
    recovered = {e["channel"]: e["attempt"] for e in events(restart.err) if e["event"] == "notify.recovered"}
    assert recovered.get("email") == 1 and set(recovered) <= {"email", "hook"}
    assert [r[2:] for r in outbox_rows(workspace)] == [("sent", 1), ("sent", 1)]


def test_a_crash_report_never_shows_a_channel_secret(workspace: Workspace, fake_api: FakeCtGov) -> None:
    """apprise's own logger must not print (unredacted) to stderr beside our structured logs."""
    workspace.write(
        trials=[CHANGED],
        channels={"hook": {"url": "json://user:TopSecretPw@127.0.0.1:9/key-123456"}},
        extra="notify:\n  claim_timeout: 1s\n",
    )
    assert workspace.process("check").code == 0
    fake_api.update(CHANGED, edit_trial)
    result = workspace.process("--log-format", "json", "check")
    assert any(e["event"] == "notify.failed" for e in events(result.err))
    assert "TopSecretPw" not in result.err + result.out and "key-123456" not in result.err + result.out
    # Only our structured logs and the command's own one-line summaries (`trialwatch: … left queued`).
    assert all(line.startswith(("{", "trialwatch: ")) for line in result.err.splitlines() if line.strip()), result.err


CTRL_C_AS_AT_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'trialwatch'; runpy.run_module('watcher', run_name='__main__')"
)
"""`python -m watcher` with Ctrl-C handled as at a terminal: a runner that started the tests in the
background (`cmd &` in a script) has SIGINT ignored, every child inherits that, and Python then
installs no Ctrl-C handler at all."""


def test_ctrl_c_during_check_keeps_what_was_saved_says_so_and_exits_130(
    workspace: Workspace,
    fake_api: FakeCtGov,
) -> None:
    workspace.write(trials=["NCT04728893", "NCT03418623"])
    fake_api.fail("timeout", path_contains="/studies", delay=4, times=3)
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_AS_AT_A_TERMINAL, "--config", str(workspace.settings), "check"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: fake_api.requests_to("/studies"), timeout=20)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert "trialwatch: interrupted; 0 trials checked and saved before the stop" in err.decode()
    assert "Aborted!" not in err.decode()
    with sqlite_file(workspace.root / "state" / "trialwatch.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT result FROM cycles").fetchall() == [("interrupted",)]
