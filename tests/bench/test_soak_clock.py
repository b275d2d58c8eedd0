"""The soak's latency bound comes from the faults it injected, and it can still fail: a change that
waits while nothing was wrong is late, one that waits through failing cycles, a restart or its
channel's refusals is not. And the webhook's long outage is judged as the service met it."""

from __future__ import annotations

import json
from pathlib import Path

from bench.soak import Plan, Soak
from bench.soak_clock import Window, failing_spans, merged, refusal_windows, running
from bench.soak_peers import Delivered, Met
from bench.soak_report import Incarnation, Judge, Made, Schedule, _channel, channel_alerts, restart_windows
from tests.support.fakeapi import FakeCtGov

CHANGE = Made("NCT90000001", "status.overallStatus", "RECRUITING", "SUSPENDED", 100.0)


def _hook(at: float) -> Delivered:
    body = {
        "kind": "changes",
        "message_id": 1,
        "trial": {"nct_id": CHANGE.nct_id},
        "changes": [{"field": CHANGE.field, "old": CHANGE.old, "new": CHANGE.new}],
    }
    return Delivered(at, body=json.loads(json.dumps(body)), headers={"Idempotency-Key": "trialwatch-1"})


def _late(schedule: Schedule, arrived: float, bound: float = 60.0) -> list[str]:
    judge = Judge(
        [CHANGE], blocked=schedule.blocked("hook", [], []), latency_bound=bound, trial_blocked=schedule.trial_blocked()
    )
    return _channel("hook", [_hook(arrived)], judge).too_late


def test_a_change_held_back_while_nothing_was_wrong_is_late_whatever_the_faults_elsewhere() -> None:
    quiet = Schedule(api_hold={"html": 25.0})
    assert _late(quiet, 150.0) == []
    assert _late(quiet, 400.0) == [
        'NCT90000001 status.overallStatus → "SUSPENDED" after 300s (300s of it no injected fault explains)'
    ]
    # API faults before the change, or long after it arrived, explain nothing
    elsewhere = Schedule(api=[(10.0, "500", ()), (50.0, "timeout", ()), (900.0, "html", ())], api_hold={"html": 25.0})
    assert len(_late(elsewhere, 400.0)) == 1


def test_a_run_of_failing_cycles_after_the_change_explains_its_wait_but_only_that_long() -> None:
    run = [(110.0 + 20 * i, "html", ()) for i in range(10)]  # cycles failing from 110 to 315 (hold 25 s each)
    schedule = Schedule(api=run, api_hold={"html": 25.0})
    assert merged(schedule.blocked("hook", [], [])) == [(110.0, 315.0)]
    assert _late(schedule, 360.0) == []  # 10 s before the run, 45 s after it: 55 s unexplained
    assert _late(schedule, 380.0) == [
        'NCT90000001 status.overallStatus → "SUSPENDED" after 280s (75s of it no injected fault explains)'
    ]


def test_a_fault_set_for_one_trial_holds_back_that_trial_only() -> None:
    partial = [(110.0 + 20 * i, "partial", ("NCT90000002",)) for i in range(10)]
    assert len(_late(Schedule(api=partial, api_hold={"partial": 25.0}), 380.0)) == 1, "another trial's"
    mine = [(at, kind, ("NCT90000001",)) for at, kind, _ in partial]
    assert _late(Schedule(api=mine, api_hold={"partial": 25.0}), 360.0) == []
    # a retried fault holds back for its retry only
    retried = [(110.0 + 20 * i, "503", ()) for i in range(10)]
    assert len(_late(Schedule(api=retried, api_hold={"503": 6.0, "html": 25.0}), 360.0)) == 1


def test_a_refusal_holds_its_channel_until_the_retry_the_back_off_schedules() -> None:
    answered = [Met(100.0, 100.5, False), Met(130.5, 131.0, False), Met(191.0, 191.2, True)]
    assert refusal_windows(answered, slack=5.0) == [
        Window("refused", 100.0, 135.5),  # first refusal: retried 30 s later
        Window("refused", 130.5, 196.0),  # second: 60 s later
    ]
    schedule = Schedule(answered={"hook": answered})
    assert _late(schedule, 200.0, bound=10.0) == []
    # the mail channel's refusals do not excuse the webhook
    other = Schedule(answered={"mail": answered})
    assert len(_late(other, 200.0, bound=10.0)) == 1


def test_a_restart_stops_the_clock_from_the_signal_until_the_next_process_serves(tmp_path: Path) -> None:
    def run(number: int, started: float, events: list[dict[str, object]]) -> Incarnation:
        err, out = tmp_path / f"{number}.err", tmp_path / f"{number}.out"
        err.write_text("".join(json.dumps(e) + "\n" for e in events))
        out.write_text("")
        return Incarnation(number, number, started, err, out)

    first = run(1, 90.0, [])
    first.signal_at = 120.0
    second = run(2, 121.0, [{"event": "service.started", "timestamp": "1970-01-01T00:02:10Z"}])  # t=130
    crashed = run(3, 200.0, [])  # ended on its own: nothing the soak did
    assert restart_windows([first, second, crashed], settle=14.0) == [Window("restart", 120.0, 144.0)]


def test_running_counts_only_the_seconds_outside_every_window() -> None:
    blocked = merged([Window("a", 10.0, 20.0), Window("b", 15.0, 30.0), Window("c", 50.0, 60.0)])
    assert blocked == [(10.0, 30.0), (50.0, 60.0)]
    assert running(0.0, 100.0, blocked) == 70.0
    assert running(12.0, 28.0, blocked) == 0.0


def _mail(*subjects: str) -> list[Delivered]:
    return [Delivered(float(i), text="", subject=s) for i, s in enumerate(subjects)]


def test_the_mail_must_be_told_of_each_webhook_failure_the_service_met_past_the_threshold() -> None:
    # refusals from 100 to 230 (the back-off's retries), then accepted: 130 s failing as the service saw it
    long = [Met(100.0, 100.0, False), Met(130.0, 130.0, False), Met(190.0, 190.0, False), Met(230.0, 230.0, True)]
    assert failing_spans(long, until=999.0) == [(100.0, 230.0)]
    schedule = Schedule(answered={"hook": long}, failing_after=45.0)
    told = _mail("TrialWatch: channel 'hook' failing for 0 min", "TrialWatch: channel 'hook' recovered")
    assert channel_alerts(told, schedule) == ""
    assert channel_alerts(told[:1], schedule).startswith("mail was told of the webhook failing 1×, recovered 0×")
    assert channel_alerts(_mail(), schedule).startswith("mail was told of the webhook failing 0×, recovered 0×")
    # the webhook "down" for 90 s while nothing was sent to it: the service met no failure to tell
    unmet = Schedule(answered={"hook": [Met(100.0, 100.0, True), Met(200.0, 200.0, True)]}, failing_after=45.0)
    assert channel_alerts(_mail(), unmet).startswith("not tested")
    assert channel_alerts(_mail(), Schedule(failing_after=None)) == ""


def test_an_alert_for_a_failure_the_receiver_saw_short_is_wrong_unless_a_kill_hid_an_acceptance() -> None:
    # a long failure told, and then two of 30 s each with an acceptance between them
    answered = [Met(0.0, 0.0, False), Met(100.0, 100.0, True)]  # 100 s: told
    answered += [Met(200.0, 200.0, False), Met(230.0, 230.0, True), Met(240.0, 240.0, False), Met(270.0, 270.0, True)]
    twice = _mail(*["TrialWatch: channel 'hook' failing for 1 min", "TrialWatch: channel 'hook' recovered"] * 2)
    assert channel_alerts(twice, Schedule(answered={"hook": answered}, failing_after=45.0)).startswith(
        "mail was told of the webhook failing 2×"
    )
    # killed 2 s after the receiver accepted at 230: the service may not have recorded it, 200-270 is one failure
    killed = Schedule(answered={"hook": answered}, failing_after=45.0, kills=[232.0])
    assert channel_alerts(twice, killed) == ""


def test_api_faults_do_not_pile_up_one_waits_for_its_request(tmp_path: Path) -> None:
    soak = Soak(Plan(seconds=1.0), tmp_path)
    fake = FakeCtGov()
    soak.api_fault(fake)
    soak.api_fault(fake)  # the first has met no request yet: no second
    assert sum(soak.faults.values()) == 1
    assert fake.faults_pending(records=True) >= 1
    fake.clear_faults()
    soak.api_fault(fake)
    assert sum(soak.faults.values()) == 2
