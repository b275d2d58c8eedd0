"""A hostile configuration never stops the service: an alias bomb saved into the watchlist or the
settings while it runs is rejected (the service keeps its configuration), a restart on a bombed
watchlist runs with the last good copy, and a bombed settings file is a clean exit 2."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.hostile import alias_bomb
from tests.support.peers import WebhookReceiver, wait_until
from tests.support.servicerun import Service, fast_settings
from tests.support.workspace import Workspace
from watcher.errors import ConfigError
from watcher.service import lastgood, reload

A = "NCT04728893"
BOMB_WATCHLIST = alias_bomb() + f"trials:\n  - {A}\n  - *bomb\n"
ALIAS_PROBLEM = "YAML aliases expand to more than"


@pytest.mark.slow
def test_a_bomb_saved_while_running_is_rejected_and_a_restart_runs_with_the_last_good_watchlist(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    workspace.write(trials=[A], channels={"hook": {"url": webhook.url()}})
    fast_settings(workspace)
    good_settings = workspace.settings.read_text()
    service = Service(workspace)
    try:
        service.wait_event("cycle.done", timeout=90)
        workspace.watchlist.write_text(BOMB_WATCHLIST)  # picked up on save
        rejected = service.wait_event("watchlist.rejected", timeout=30)[0]
        assert any(ALIAS_PROBLEM in p and "watchlist.yaml:" in p for p in rejected["problems"])
        assert rejected["kept_trials"] == 1

        workspace.settings.write_text(good_settings + alias_bomb(top="x_bomb") + "x_keys: *x_bomb\n")
        service.signal(signal.SIGHUP)
        again = service.wait_event("watchlist.rejected", count=2, timeout=30)[1]
        assert any(ALIAS_PROBLEM in p and "trialwatch.yaml:" in p for p in again["problems"])
        polled = len(fake_api.requests_to("/version"))
        wait_until(lambda: len(fake_api.requests_to("/version")) > polled, timeout=20)  # still polling
        assert service.stop()[0] == 0
    finally:
        service.kill()

    result = workspace.process("run", timeout=60)  # a bombed settings file: a clean refusal
    assert result.code == 2 and ALIAS_PROBLEM in result.err and "Traceback" not in result.err

    workspace.settings.write_text(good_settings)  # the watchlist is still bombed: the last good copy runs
    restarted = Service(workspace)
    try:
        started = restarted.wait_event("watchlist.started_on_last_good", timeout=90)[0]
        assert started["trials"] == 1 and any(ALIAS_PROBLEM in p for p in started["problems"])
        restarted.wait_event("cycle.done", timeout=90)
        assert restarted.stop()[0] == 0
    finally:
        restarted.kill()


def test_any_failure_while_reading_is_a_configuration_error(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever escapes the validators (here a MemoryError) is a ConfigError naming the file, on
    reload and at start-up alike, so the service keeps or falls back to a configuration."""
    workspace.write(trials=[A])

    def crash(*args: object) -> None:
        raise MemoryError

    from watcher.config import load_config

    config = load_config(workspace.settings, {})
    monkeypatch.setattr(reload, "load_config", crash)
    with pytest.raises(ConfigError) as on_reload:
        reload.reloaded_config(config, workspace.settings, {})
    assert "cannot be read (MemoryError)" in str(on_reload.value)
    monkeypatch.setattr(lastgood, "load_config", crash)
    monkeypatch.setattr(lastgood, "load_settings", crash)
    with pytest.raises(ConfigError) as on_start:
        lastgood.startup_config(Path(workspace.settings), {})
    assert str(workspace.settings) in str(on_start.value)
