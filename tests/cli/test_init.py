"""`trialwatch init`: a first run's files, written without a question off a terminal, never over a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver, wait_until
from tests.support.workspace import REPO

A, B = "NCT04728893", "NCT03418623"


def trialwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, stdin not a terminal (as in a script, CI or a container build)."""
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
def test_init_on_an_empty_folder_then_check_reaches_a_webhook(
    tmp_path: Path, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    """The tutorial's path: init, a first check (the baseline, silent), an edit, a check that reports it."""
    folder = tmp_path / "first-run"
    made = trialwatch(
        "init", str(folder), "--trial", A, "--trial", B.lower(), "--channel", webhook.url(),
        "--api-url", fake_api.base_url, cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    settings = folder / "trialwatch.yaml"
    assert made.stdout.splitlines()[0] == f"wrote {settings} (settings) and {folder / 'watchlist.yaml'} (2 trials)"
    assert f"  trialwatch --config {settings} check" in made.stdout.splitlines()
    assert (folder / "watchlist.yaml").read_text(encoding="utf-8").count("  - NCT") == 2
    assert settings.read_text(encoding="utf-8").startswith("# TrialWatch settings")

    first = trialwatch("--config", str(settings), "check", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert webhook.requests == []  # a first version is a baseline: recorded, not notified
    assert (folder / "state" / "trialwatch.sqlite").exists()

    fake_api.update(A, lambda s: s["protocolSection"]["statusModule"].update(overallStatus="SUSPENDED"))
    second = trialwatch("--config", str(settings), "check", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    wait_until(lambda: webhook.requests)
    document = webhook.requests[0].json()
    assert document["kind"] == "changes"
    assert document["trial"]["nct_id"] == A
    assert [c["field"] for c in document["changes"] if c["field"] == "status.overallStatus"] == ["status.overallStatus"]


@pytest.mark.slow
def test_init_asks_nothing_off_a_terminal_and_never_overwrites(tmp_path: Path) -> None:
    made = trialwatch("init", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "Trials to watch" not in made.stdout + made.stderr
    watchlist = (tmp_path / "watchlist.yaml").read_text(encoding="utf-8")
    assert "NCT06747156" in watchlist  # the example trials stand in for the question
    (tmp_path / "watchlist.yaml").write_text("trials: [NCT04728893]  # mine\n", encoding="utf-8")
    again = trialwatch("init", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exist" in again.stderr and "nothing written" in again.stderr
    assert (tmp_path / "watchlist.yaml").read_text(encoding="utf-8") == "trials: [NCT04728893]  # mine\n"

    other = tmp_path / "other"
    (other).mkdir()
    (other / "trialwatch.yaml").write_text("# mine\n", encoding="utf-8")
    refused = trialwatch("init", str(other), cwd=tmp_path)
    assert refused.returncode == 2
    assert not (other / "watchlist.yaml").exists()  # one file there is enough to write neither


@pytest.mark.slow
def test_init_refuses_what_would_not_validate_and_writes_nothing(tmp_path: Path) -> None:
    bad_id = trialwatch("init", "--trial", "NCT123", cwd=tmp_path)
    assert bad_id.returncode == 2 and "'NCT123'" in bad_id.stderr
    bad_url = trialwatch("init", "--channel", "slak://token", cwd=tmp_path)
    assert bad_url.returncode == 2
    assert "slak" in bad_url.stderr and "nothing written" in bad_url.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_on_a_terminal_init_asks_what_to_watch_and_where_to_send(tmp_path: Path) -> None:
    """stdin a real terminal (a pseudo-terminal): the two questions, a bad answer asked again."""
    import pty

    controller, terminal = pty.openpty()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "watcher", "init", "here"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO), "TRIALWATCH_CONFIG": ""},
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            answers = f"no id here\nsee https://clinicaltrials.gov/study/{A} and {B.lower()}\njson://127.0.0.1:9/hook\n"
            os.write(controller, answers.encode())
            out, err = process.communicate(timeout=120)
    finally:
        os.close(controller)
        os.close(terminal)
    assert process.returncode == 0, err
    assert "No NCT ID in that" in err
    watchlist = (tmp_path / "here" / "watchlist.yaml").read_text(encoding="utf-8")
    assert f"  - {A}\n  - {B}\n" in watchlist
    assert 'url: "json://127.0.0.1:9/hook"' in (tmp_path / "here" / "trialwatch.yaml").read_text(encoding="utf-8")
    assert "wrote here/trialwatch.yaml (settings) and here/watchlist.yaml (2 trials)" in out
