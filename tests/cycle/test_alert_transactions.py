"""An alert is written in the transaction of the state change that causes it.

Each case below brings a workspace to the cycle that raises one kind of alert, and that cycle
crashes at the worst moment: its state change is written, its alert is about to be queued. The
crash (a BaseException, as a kill would be: nothing in the cycle catches it) must leave neither
behind; the next cycle then makes the same decision again and the alert goes out, once. Were the
two written in separate transactions, the state would survive the crash and the alert would be
lost for good (the next cycle sees nothing new to say).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver
from tests.support.workspace import Workspace
from watcher.messages import NewMessage
from watcher.store import Store
from watcher.store.meta import API_DENIED, API_FAILURES, API_RETRY_AT, SUSPECT
from watcher.store.outbox import OutboxQueue

GOOD, BAD, MISSING, SITES = "NCT04728893", "NCT03418623", "NCT09999999", "NCT04267848"
FAST = {"max_retries": 0, "backoff_base": 0.01, "backoff_max": 0.01}


class Crash(BaseException):
    """The process dies here."""


@dataclass(frozen=True)
class Case:
    trials: Sequence[str]
    prepare: Callable[[Workspace, FakeCtGov], None]
    """Cycles and faults up to the one that raises the alert."""
    title: str
    state: Callable[[Store], Any]
    """The state the alert reports, as the store holds it."""
    check: tuple[str, ...] = ("check",)


def run(workspace: Workspace, *args: str, times: int = 1) -> None:
    for _ in range(times):
        workspace.cli(*args)


def trial(nct_id: str, field: str) -> Callable[[Store], Any]:
    def read(store: Store) -> Any:
        state = store.trials.states().get(nct_id)
        return getattr(state, field) if state is not None else None

    return read


def failing(workspace: Workspace, fake_api: FakeCtGov) -> None:
    fake_api.fail("wrong_id", ids=[BAD], times=1000)
    run(workspace, "check")  # the first failure: counted, not alerted


def not_found(workspace: Workspace, fake_api: FakeCtGov) -> None:
    pass  # the first cycle meets the 404


def moved(workspace: Workspace, fake_api: FakeCtGov) -> None:
    run(workspace, "check")
    fake_api.alias(GOOD, "NCT07000001")


def unreachable(workspace: Workspace, fake_api: FakeCtGov) -> None:
    run(workspace, "check")
    fake_api.fail(500, path_contains="/version", times=1000)
    run(workspace, "check")


def refused(workspace: Workspace, fake_api: FakeCtGov) -> None:
    run(workspace, "check")
    fake_api.fail(403, path_contains="/version", times=1000)


def api_recovers(workspace: Workspace, fake_api: FakeCtGov) -> None:
    unreachable(workspace, fake_api)
    run(workspace, "check")  # alerted: unreachable for 2 cycles
    fake_api.clear_faults()


def new_trial_recovers(workspace: Workspace, fake_api: FakeCtGov) -> None:
    """BAD never answered with its own record: its first version is the change that resets it."""
    fake_api.fail("wrong_id", ids=[BAD], times=1000)
    run(workspace, "check", times=2)  # alerted: failing for 2 cycles
    fake_api.clear_faults()


def stored_trial_recovers(workspace: Workspace, fake_api: FakeCtGov) -> None:
    """GOOD is stored, then fails alone; unchanged when it answers again: marked checked."""
    run(workspace, "check")
    fake_api.fail(500, path_contains=GOOD, times=1000)
    run(workspace, "check", "--full", times=2)  # alerted: failing for 2 cycles
    fake_api.clear_faults()


def partial(workspace: Workspace, fake_api: FakeCtGov) -> None:
    run(workspace, "check")
    fake_api.update(SITES, lambda s: s["protocolSection"]["statusModule"].update(overallStatus="COMPLETED"))
    fake_api.fail("partial", ids=[SITES], times=999)


def meta(*keys: Any) -> Callable[[Store], Any]:
    return lambda store: [store.meta.get(k) for k in keys]


CASES = {
    "failing": Case([GOOD, BAD], failing, f"{BAD}: failing for 2 cycles", trial(BAD, "consecutive_failures")),
    "not found": Case(
        [GOOD, MISSING], not_found, f"{MISSING}: not found on ClinicalTrials.gov", trial(MISSING, "not_found")
    ),
    "moved": Case(
        [GOOD], moved, f"{GOOD} is now listed as NCT07000001", trial(GOOD, "canonical_id"), ("check", "--full")
    ),
    "unreachable": Case([GOOD], unreachable, "ClinicalTrials.gov unreachable for 2 cycles", meta(API_FAILURES)),
    "403": Case(
        [GOOD],
        refused,
        "ClinicalTrials.gov refuses TrialWatch's requests (HTTP 403)",
        meta(API_FAILURES, API_DENIED, API_RETRY_AT),
    ),
    "api recovered": Case([GOOD], api_recovers, "ClinicalTrials.gov polling recovered", meta(API_FAILURES)),
    "new version recovers": Case(
        [GOOD, BAD], new_trial_recovers, f"{BAD}: checked again", trial(BAD, "consecutive_failures")
    ),
    "unchanged recovers": Case(
        [GOOD], stored_trial_recovers, f"{GOOD}: checked again", trial(GOOD, "consecutive_failures")
    ),
    "partial record": Case([SITES], partial, f"{SITES}: partial record held back", meta(SUSPECT.of(SITES))),
}


def crash_before_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Die where an alert is about to be queued: after the writes that cause it, in their transaction.
    Every queued message passes here (`Transaction.enqueue` and a page of new versions alike)."""
    real = OutboxQueue.insert_many_in

    def insert_many_in(s: Any, messages: Sequence[tuple[NewMessage, datetime]]) -> None:
        if any(message.kind == "alert" for message, _ in messages):
            raise Crash
        real(s, messages)

    monkeypatch.setattr(OutboxQueue, "insert_many_in", staticmethod(insert_many_in))


def titles(webhook: WebhookReceiver) -> list[str]:
    """The alerts the channel received (a moved trial's record change goes out too)."""
    return [r.json()["title"] for r in webhook.requests if r.json()["kind"] == "alert"]


def read(workspace: Workspace, what: Callable[[Store], Any]) -> Any:
    store = Store(workspace.db_url)
    try:
        return what(store)
    finally:
        store.close()


def alerts_queued(workspace: Workspace) -> int:
    return read(workspace, lambda store: sum(1 for m in store.outbox.messages() if m.kind == "alert"))


def state_of(workspace: Workspace, case: Case) -> Any:
    return read(workspace, case.state)


@pytest.mark.parametrize("name", list(CASES))
def test_a_crash_between_a_state_change_and_its_alert_loses_neither(
    name: str,
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = CASES[name]
    workspace.write(
        trials=list(case.trials),
        channels={"hook": {"url": webhook.url()}},
        api=FAST,
        extra="notify:\n  failure_alert_after: 2\n",
    )
    case.prepare(workspace, fake_api)
    before, said, queued = state_of(workspace, case), titles(webhook), alerts_queued(workspace)

    with monkeypatch.context() as crashing:
        crash_before_alerts(crashing)
        with pytest.raises(Crash):
            workspace.cli(*case.check)
    assert state_of(workspace, case) == before, "the state change rolled back with its alert"
    assert alerts_queued(workspace) == queued

    workspace.cli(*case.check)
    assert titles(webhook)[len(said) :] == [case.title], "the next cycle decided again, and said it"
    assert state_of(workspace, case) != before
    workspace.cli(*case.check)
    assert titles(webhook)[len(said) :] == [case.title], "once"
