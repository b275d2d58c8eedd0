"""After a cycle: backfill of new trials, retention, feeds — one failing step never skips another."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.cycle import Cycle
from watcher.errors import StorageError
from watcher.registry.client import CtGovClient
from watcher.store import Store
from watcher.store.meta import LAST_RETENTION

TRIAL = "NCT04728893"
DONE = {"backfill": "backfill.done", "retention": "retention.done", "feeds": "feeds.written"}


def broken(error: BaseException) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def break_step(monkeypatch: pytest.MonkeyPatch, step: str, error: BaseException) -> None:
    import watcher.cycle.housekeeping
    import watcher.views.feeds

    if step == "backfill":
        monkeypatch.setattr(watcher.cycle.housekeeping, "try_backfill", broken(error))
    elif step == "retention":
        monkeypatch.setattr(watcher.cycle.housekeeping, "apply_retention_daily", broken(error))
    else:
        monkeypatch.setattr(watcher.views.feeds, "write_feeds", broken(error))


def first_cycle(workspace: Workspace) -> tuple[list[dict[str, Any]], Store, BaseException | None]:
    """A new trial's first cycle (so backfill has work), with every housekeeping step configured."""
    workspace.write(trials=[TRIAL], extra="backfill:\n  on_add: true\nfeeds:\n  path: feeds/trialwatch.atom\n")
    workspace.settings.write_text(
        workspace.settings.read_text().replace("storage:\n", "storage:\n  keep_versions: 1\n")
    )
    config = load_config(workspace.settings)
    store = Store(config.settings.storage_url)
    client = CtGovClient(config.settings.api)
    raised: BaseException | None = None
    try:
        with capture_logs() as logs:
            try:
                Cycle(config, store, client, write=lambda _: None).run()
            except RuntimeError as exc:
                raised = exc
    finally:
        client.close()
    return logs, store, raised


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


@pytest.mark.parametrize(
    "error", [StorageError("database is locked"), PermissionError(13, "Permission denied")], ids=["storage", "os"]
)
@pytest.mark.parametrize("step", list(DONE))
def test_a_failing_step_is_logged_and_the_others_still_run(
    step: str, error: BaseException, workspace: Workspace, fake_api: FakeCtGov, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_step(monkeypatch, step, error)
    logs, store, raised = first_cycle(workspace)
    try:
        assert raised is None, "an expected failure is left for the next cycle"
        assert [(e["step"], e["error"]) for e in events(logs, "housekeeping.failed")] == [(step, str(error))]
        ran = {name for name, event in DONE.items() if events(logs, event)}
        assert ran == set(DONE) - {step}
        assert (store.meta.get(LAST_RETENTION) is not None) == (step != "retention")
    finally:
        store.close()
    assert (workspace.root / "feeds" / "trialwatch.atom").exists() == (step != "feeds")


@pytest.mark.parametrize("step", list(DONE))
def test_a_bug_in_a_step_is_raised_with_its_traceback_after_the_others_ran(
    step: str, workspace: Workspace, fake_api: FakeCtGov, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_step(monkeypatch, step, RuntimeError("a bug"))
    logs, store, raised = first_cycle(workspace)
    store.close()
    assert isinstance(raised, RuntimeError), "a bug is not dressed as an expected failure"
    (crashed,) = events(logs, "housekeeping.crashed")
    assert crashed["step"] == step and crashed["exc_info"] is True
    assert {name for name, event in DONE.items() if events(logs, event)} == set(DONE) - {step}
