"""The soak's verdict: what was changed against what each channel accepted, and what the logs say.

Kept apart from the run so it can be read (and tested) on its own: it takes plain records of the
run — the changes made, the service's incarnations, the deliveries — and returns a `Report`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.soak_clock import (
    Answered,
    FaultMet,
    Window,
    api_windows,
    failing_spans,
    merged,
    refusal_windows,
    running,
    share_blocked,
)
from bench.soak_peers import Delivered

if TYPE_CHECKING:
    from bench.soak import Plan, Soak

CRASH_EVENTS = frozenset(
    {"trial.crashed", "cycle.crashed", "notify.tick_crashed", "notify.worker_failed", "service.thread_died"}
)
STORAGE_EVENTS = frozenset({"cycle.crashed", "notify.tick_crashed", "trial.crashed"})
"""Crash events that are expected while the soak holds the database away (a storage fault), when
they say so (a `StorageError`): the cycle or tick the fault hit fails, and the next one tries again."""
DUPLICATE_WINDOW = 10.0
"""Seconds before a kill in which a message the channel accepted may be sent again: the send, the
`sent` mark and its commit take well under a second, ten covers a loaded machine."""
FAULT_GRACE = 30.0
"""Seconds after a storage fault ends in which its effects (a crashed cycle, an unhealthy state) still count as its."""
FIRST_LINE = re.compile(r"^(NCT\d{8})\b.*?\d+ changes?, version (\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Made:
    """One edit the soak made on the fake API: the ground truth of a change."""

    nct_id: str
    field: str
    old: Any
    new: Any
    at: float


@dataclass
class Incarnation:
    """One `trialwatch run` process, from start to its end."""

    number: int
    pid: int
    started_at: float
    err: Path
    out: Path
    ended_at: float | None = None
    stopped_by: str | None = None  # kill, term, itself
    signal_at: float | None = None
    exit_code: int | None = None
    stop_hung: bool = False

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.err.read_text(errors="replace").splitlines():
            with_brace = line.startswith("{")
            if with_brace:
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found


@dataclass(frozen=True)
class Message:
    """A delivery as the soak reads it back: which message, which trial, which changes."""

    kind: str
    key: tuple[Any, ...]
    nct_id: str | None
    changes: tuple[tuple[str, str, str], ...]  # (field, old, new): JSON text (webhook) or the email's text
    at: float
    message_id: int | None
    idempotency_ok: bool = True
    title: str = ""


def parse(delivered: Delivered) -> Message:
    if delivered.body is not None:  # the JSON webhook
        body = delivered.body
        kind = str(body.get("kind"))
        message_id = body.get("message_id")
        key = str(delivered.headers.get("Idempotency-Key", ""))  # trialwatch-[<installation id>-]<message id>
        key_ok = key.startswith("trialwatch-") and key.endswith(f"-{message_id}")
        trial = body.get("trial") or {}
        changes = tuple(
            (str(c["field"]), json.dumps(c.get("old")), json.dumps(c.get("new"))) for c in body.get("changes", [])
        )
        return Message(
            kind,
            ("id", message_id),
            trial.get("nct_id"),
            changes,
            delivered.at,
            message_id,
            key_ok,
            str(body.get("title", "")),
        )
    match = FIRST_LINE.search(delivered.text)
    if match is None:  # an alert or a heartbeat
        return Message("other", ("subject", delivered.subject), None, (), delivered.at, None, title=delivered.subject)
    found: list[tuple[str, str, str]] = []
    for line in delivered.text.splitlines():
        if line[:1].strip() and ": " in line and " → " in line and not line.startswith("NCT"):
            name, rest = line.split(": ", 1)
            old, new = rest.split(" → ", 1)
            found.append((name, old, new))
    return Message(
        "changes", ("version", match.group(1), int(match.group(2))), match.group(1), tuple(found), delivered.at, None
    )


def as_text(value: Any, *, json_body: bool, new: bool = True) -> str:
    """A value as the channel spells it: JSON text in the webhook's document, the email's own words
    (an added field was "(none)", a removed one is "(removed)")."""
    if json_body:
        return json.dumps(value)
    if value is None:
        return "(removed)" if new else "(none)"
    return str(value)


def delivered_keys(delivered: Iterable[Delivered]) -> set[tuple[str, str, str]]:
    """(trial, field, new value as the channel spells it) of every change that arrived."""
    return {
        (m.nct_id, name, new)
        for m in map(parse, list(delivered))
        if m.kind == "changes" and m.nct_id
        for name, _, new in m.changes
    }


def made_keys(made: Iterable[Made], *, json_body: bool) -> set[tuple[str, str, str]]:
    return {(m.nct_id, m.field, as_text(m.new, json_body=json_body)) for m in made}


@dataclass
class ChannelResult:
    accepted: int = 0
    change_messages: int = 0
    other_messages: int = 0
    delivered: int = 0
    lost: list[Made] = field(default_factory=list)
    wrong_value: list[str] = field(default_factory=list)
    false_alerts: list[str] = field(default_factory=list)
    duplicates_in_window: list[str] = field(default_factory=list)
    duplicates_outside: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    unexplained: list[float] = field(default_factory=list)  # of each latency, the seconds no injected fault explains
    too_late: list[str] = field(default_factory=list)
    blocked_share: float = 0.0  # of the run, the part the latency clock stood still (injected faults)
    idempotency_missing: int = 0
    others: dict[str, int] = field(default_factory=dict)  # alerts and heartbeats by title, IDs and counts masked


@dataclass
class Report:
    made: int
    channels: dict[str, ChannelResult]
    incarnations: list[Incarnation]
    crashes: list[str]
    secret_hits: list[str]
    rss_kb: list[int]
    faults: dict[str, int]
    moods: dict[str, dict[str, int]]
    notes: list[str]
    watchlist_rejected: bool
    cycles: dict[str, int] = field(default_factory=dict)  # cycle.done results: ok, api_failed, partial
    auth_failures: int = 0
    unhealthy: list[str] = field(default_factory=list)  # service.unhealthy no storage fault explains
    expected_failures: int = 0  # cycles and ticks a storage fault failed, as it should
    reloads_missing: int = 0  # SIGHUPs sent that no `config.reloaded` answered
    channel_alerts: str = ""  # what is wrong with the alerts about the long outage, if anything

    @property
    def clean(self) -> bool:
        bad = [
            r.lost or r.false_alerts or r.wrong_value or r.duplicates_outside or r.idempotency_missing or r.too_late
            for r in self.channels.values()
        ]
        return not (
            any(bad)
            or self.crashes
            or self.secret_hits
            or not self.watchlist_rejected
            or self.unhealthy
            or self.reloads_missing
            or self.channel_alerts
        )


def _when(event: Mapping[str, Any]) -> float:
    return datetime.fromisoformat(str(event.get("timestamp", "")).replace("Z", "+00:00")).timestamp()


def _marked(inc: Incarnation, channel: str, first: Message) -> bool:
    """Whether `inc` logged `notify.sent` (after the commit of the `sent` mark) for `first`."""
    for event in inc.events():
        if event.get("event") != "notify.sent" or event.get("channel") != channel:
            continue
        same = (
            event.get("message_id") == first.message_id
            if first.message_id is not None
            else event.get("nct_id") == first.nct_id
        )
        if same and _when(event) >= first.at - 1.0:
            return True
    return False


def _in_window(
    channel: str, first: Message, incarnations: Sequence[Incarnation], faults: Sequence[Window] = ()
) -> bool:
    """The documented window: the channel accepted the message and the process could not mark it
    `sent` — it was killed within `DUPLICATE_WINDOW` seconds of the acceptance, before logging
    `notify.sent`; or the database was held away (a storage fault) at that moment."""
    if any(w.holds(first.at, grace=DUPLICATE_WINDOW) for w in faults):
        return True
    for inc in incarnations:
        if not inc.started_at <= first.at <= (inc.ended_at or float("inf")):
            continue
        if inc.stopped_by not in {"kill", "term"} or inc.exit_code == 0 or inc.signal_at is None:
            continue  # a clean SIGTERM stop finishes what it sent
        if 0.0 <= inc.signal_at - first.at <= DUPLICATE_WINDOW and not _marked(inc, channel, first):
            return True
    return False


@dataclass(frozen=True)
class Judge:
    """What one channel is held to: the ground truth, the service's runs, the soak's own interventions.

    `latency_bound` is a budget of seconds in which no fault the soak injected held the change back
    (`bench.soak_clock`): `blocked` holds every such window for this channel (API faults, restarts,
    storage faults, its own refusals and the retries they put off)."""

    made: Sequence[Made]
    incarnations: Sequence[Incarnation] = ()
    faults: Sequence[Window] = ()  # storage faults
    blocked: Sequence[Window] = ()  # the latency clock stands still in these
    latency_bound: float = float("inf")
    trial_blocked: Mapping[str, Sequence[Window]] = field(default_factory=dict)  # and in these, for one trial

    def unexplained(self, change: Made, seen: float) -> float:
        """Seconds from the change to its arrival that no injected fault explains."""
        return running(change.at, seen, merged([*self.blocked, *self.trial_blocked.get(change.nct_id, ())]))


def _channel(name: str, items: Sequence[Delivered], judge: Judge) -> ChannelResult:
    """Judged per (trial, field, new value) across every message: a change made must arrive (with its
    exact old value), one nobody made must not, and one arriving in two messages is a duplicate."""
    result = ChannelResult(accepted=len(items))
    json_body = any(d.body is not None for d in items)
    truth = {(m.nct_id, m.field, as_text(m.new, json_body=json_body)): m for m in judge.made}
    arrivals = _arrivals(result, items, truth, json_body=json_body)
    for key, change in truth.items():
        found = arrivals.get(key)
        if not found:
            result.lost.append(change)
            continue
        latency = found[0].at - change.at
        unexplained = judge.unexplained(change, found[0].at)
        result.latencies.append(latency)
        result.unexplained.append(unexplained)
        if unexplained > judge.latency_bound:
            why = f"{unexplained:.0f}s of it no injected fault explains"
            result.too_late.append(f"{key[0]} {key[1]} → {key[2]} after {latency:.0f}s ({why})")
        for extra in found[1:]:
            label = f"{key[0]} {key[1]} → {key[2]} again after {extra.at - found[0].at:.1f}s ({extra.key})"
            in_window = _in_window(name, found[0], judge.incarnations, judge.faults)
            (result.duplicates_in_window if in_window else result.duplicates_outside).append(label)
    result.delivered = sum(1 for key in truth if arrivals.get(key))
    if judge.made:
        first, last = min(m.at for m in judge.made), max([m.at for m in judge.made] + [d.at for d in items])
        result.blocked_share = share_blocked(first, last, merged(judge.blocked))
    return result


def _arrivals(
    result: ChannelResult, items: Sequence[Delivered], truth: Mapping[tuple[str, str, str], Made], *, json_body: bool
) -> dict[tuple[str, str, str], list[Message]]:
    """Every message that carried each change made, oldest first; what matches no change is noted in
    `result` (a field nobody edited: a false alert; another value, or another old value: wrong)."""
    fields_made = {(key[0], key[1]) for key in truth}
    arrivals: dict[tuple[str, str, str], list[Message]] = defaultdict(list)
    for message in sorted(map(parse, items), key=lambda m: m.at):
        if message.kind != "changes":
            _count_other(result, message)
            continue
        result.change_messages += 1
        if message.message_id is not None and not message.idempotency_ok:
            result.idempotency_missing += 1
        for field_name, old, new in message.changes:
            key = (str(message.nct_id), field_name, new)
            change = truth.get(key)
            label = f"{message.nct_id} {field_name}: {old} → {new}"
            if change is None:
                known = (str(message.nct_id), field_name) in fields_made
                (result.wrong_value if known else result.false_alerts).append(label)
            elif old != (made_old := as_text(change.old, json_body=json_body, new=False)):
                result.wrong_value.append(f"{label} (made: {made_old} → {new})")
            else:
                arrivals[key].append(message)
    return arrivals


def _count_other(result: ChannelResult, message: Message) -> None:
    """An alert or a heartbeat, counted by its title with numbers and NCT IDs masked."""
    result.other_messages += 1
    title = re.sub(r"NCT\d{8}", "NCT…", re.sub(r"\b\d+\b", "N", message.title))[:90]
    result.others[title] = result.others.get(title, 0) + 1


def _expected(event: Mapping[str, Any], faults: Sequence[Window]) -> bool:
    """A crash event a storage fault explains: it names the database failing, inside the fault."""
    return (
        event.get("event") in STORAGE_EVENTS
        and "StorageError" in str(event.get("error", ""))
        and any(w.holds(_when(event), grace=FAULT_GRACE) for w in faults)
    )


def _crashes(incarnations: Sequence[Incarnation], faults: Sequence[Window] = ()) -> tuple[list[str], int]:
    """Exits nobody asked for, tracebacks and crash events a storage fault does not explain; and how
    many crash events one did explain."""
    found, explained = [], 0
    for inc in incarnations:
        expected = {"kill": {-9}, "term": {0}}.get(inc.stopped_by or "", set())
        if inc.stopped_by == "term" and not any(e.get("event") == "service.started" for e in inc.events()):
            expected = {0, -15}  # SIGTERM while still importing, before its handlers: as systemd would see it
        if inc.exit_code is not None and inc.exit_code not in expected:
            found.append(f"run {inc.number}: exit {inc.exit_code} (stopped by {inc.stopped_by})")
        if inc.stop_hung:
            found.append(f"run {inc.number}: SIGTERM did not stop it within the stop timeout + 15 s")
        text = inc.err.read_text(errors="replace") + inc.out.read_text(errors="replace")
        raw = sum(1 for line in text.splitlines() if line.startswith("Traceback"))
        events = inc.events()
        explained += sum(1 for e in events if _expected(e, faults))
        traced = sum(1 for e in events if "exception" in e and not _expected(e, faults))
        named = [e["event"] for e in events if e.get("event") in CRASH_EVENTS and not _expected(e, faults)]
        if raw or traced or named:
            found.append(f"run {inc.number}: {raw} raw traceback(s), {traced} logged, {sorted(set(named))}")
    return found, explained


def _unhealthy(incarnations: Sequence[Incarnation], faults: Sequence[Window]) -> list[str]:
    """`service.unhealthy` that no storage fault explains (crashed cycles during one are expected; a
    dead worker thread never is)."""
    found = []
    for inc in incarnations:
        for event in inc.events():
            if event.get("event") != "service.unhealthy":
                continue
            reason = str(event.get("reason", ""))
            during = any(w.holds(_when(event), grace=FAULT_GRACE) for w in faults)
            if "thread" in reason or not (during and reason.startswith("the last")):
                found.append(f"run {inc.number}: {reason}")
    return found


def _secret_hits(runner: Soak, url: str, planted: Sequence[str]) -> list[str]:
    hits = []
    files = [p for p in runner.logs.iterdir() if p.is_file()]
    state = runner.workdir / "state"
    if state.is_dir():
        files += [p for p in state.iterdir() if p.is_file()]
    for path in files:
        data = path.read_bytes()
        hits += [f"{path.name}: {s[:6]}…" for s in planted if s.encode() in data]
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                    dumped = repr(tuple(row))
                    hits += [f"table {table}: {s[:6]}…" for s in planted if s in dumped]
    finally:
        engine.dispose()
    return hits


@dataclass(frozen=True)
class Schedule:
    """The faults as they met the service: requests the fake answered with one, each channel's answers;
    and how long each holds a change back (`bench.soak_clock`)."""

    api: Sequence[FaultMet] = ()  # each request a fault answered
    answered: Mapping[str, Sequence[Answered]] = field(default_factory=dict)  # by channel
    api_hold: Mapping[str, float] = field(default_factory=dict)  # by fault kind: seconds it holds changes back
    settle: float = 0.0  # seconds from a serving service (after a restart, a storage fault) to a cycle's end
    failing_after: float | None = None  # notify.channel_failing_after as the soak set it (None: not set)
    until: float = float("inf")  # the run's end: a channel still failing then fails until there
    kills: Sequence[float] = ()  # when the soak sent SIGKILL

    def blocked(self, channel: str, incarnations: Sequence[Incarnation], storage: Sequence[Window]) -> list[Window]:
        """Where the latency clock of `channel` stands still for every trial (`trial_blocked`: for one)."""
        return [
            *api_windows(self.api, self.api_hold)[0],
            *restart_windows(incarnations, self.settle),
            *(Window(w.what, w.start, w.end + self.settle) for w in storage),
            *refusal_windows(self.answered.get(channel, ()), REFUSAL_SLACK),
        ]

    def trial_blocked(self) -> dict[str, list[Window]]:
        """Where the clock stands still for one trial only (a partial record of it), by NCT ID."""
        return api_windows(self.api, self.api_hold)[1]


REFUSAL_SLACK = 5.0
"""Seconds past a refused message's retry time until it is sent again: the notify tick (1 s), the send."""


def restart_windows(incarnations: Sequence[Incarnation], settle: float) -> list[Window]:
    """From each signal the soak sent until the next process served (`service.started`) and ran a cycle."""
    windows = []
    for inc, after in itertools.pairwise(incarnations):
        if inc.signal_at is None:
            continue  # a process that ended on its own was not stopped by the soak: nothing to excuse
        serving = [_when(e) for e in after.events() if e.get("event") == "service.started"]
        windows.append(Window("restart", inc.signal_at, (serving[0] if serving else after.started_at) + settle))
    return windows


def analyse(
    runner: Soak,
    delivered: Mapping[str, Sequence[Delivered]],
    url: str,
    planted: Sequence[str],
    schedule: Schedule | None = None,
) -> Report:
    schedule = schedule or Schedule()
    moods: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, channel, mood in runner.moods:
        if mood != "ok":
            moods[channel][mood] += 1
    incarnations = runner.service.incarnations
    faults = runner.storage_windows
    crashes, explained = _crashes(incarnations, faults)
    events = [e for inc in incarnations for e in inc.events()]
    rejected = any(e.get("event") == "watchlist.rejected" for e in events)
    cycles: dict[str, int] = defaultdict(int)
    for event in events:
        if event.get("event") == "cycle.done":
            cycles[str(event.get("result"))] += 1
    return Report(
        made=len(runner.made),
        channels={
            name: _channel(
                name,
                items,
                Judge(
                    runner.made,
                    incarnations,
                    faults,
                    schedule.blocked(name, incarnations, faults),
                    runner.plan.latency_bound,
                    schedule.trial_blocked(),
                ),
            )
            for name, items in delivered.items()
        },
        incarnations=incarnations,
        crashes=crashes,
        secret_hits=_secret_hits(runner, url, planted),
        rss_kb=[kb for _, kb in runner.service.rss],
        faults=dict(runner.faults),
        moods={k: dict(v) for k, v in moods.items()},
        notes=runner.notes,
        watchlist_rejected=rejected or not any("watchlist broken" in n for n in runner.notes),
        cycles=dict(cycles),
        unhealthy=_unhealthy(incarnations, faults),
        expected_failures=explained,
        reloads_missing=_reloads_missing(runner.sighups, events),
        channel_alerts=channel_alerts(delivered.get("mail", []), schedule),
    )


ALERT_SLACK = 30.0
"""Seconds past `channel_failing_after` by which the other channels must have been told: notify ticks
come every second, but a restart or a storage fault can hold them up."""


def told(mail: Sequence[Delivered]) -> tuple[int, int]:
    """How often mail was told the webhook failed, and recovered."""
    subjects = [m.subject for m in mail]
    return (
        sum(1 for s in subjects if "channel 'hook' failing" in s),
        sum(1 for s in subjects if "channel 'hook' recovered" in s),
    )


def channel_alerts(mail: Sequence[Delivered], schedule: Schedule) -> str:
    """The other channel (mail) is told of each failure of the webhook as long as the threshold, and of its
    recovery, judged on the failures the service met (`failing_spans` of the webhook's answers): an outage
    while nothing was sent to the webhook is no failure the service could see, and a short one (a refusal,
    its 30 s retry refused too) may be told or not. What the service met is what it must say."""
    if schedule.failing_after is None:
        return ""
    spans = [end - start for start, end in failing_spans(schedule.answered.get("hook", ()), schedule.until)]
    must = sum(1 for length in spans if length >= schedule.failing_after + ALERT_SLACK)
    # a SIGKILL just after the webhook accepted a message can keep the acceptance from being recorded:
    # the service then sees two failures as one, long enough to be told
    cut = sum(
        1
        for m in schedule.answered.get("hook", ())
        if m.accepted and any(0.0 <= k - m.end <= DUPLICATE_WINDOW for k in schedule.kills)
    )
    may = sum(1 for length in spans if length >= schedule.failing_after - 1.0) + cut
    failing, recovered = told(mail)
    longest = max(spans, default=0.0)
    if not must:
        return (
            f"not tested: the webhook refused for {longest:.0f}s at most as the service met it, under "
            f"{schedule.failing_after:.0f}s + {ALERT_SLACK:.0f}s (mail was told {failing}×)"
        )
    if not must <= failing <= may or failing != recovered:
        return (
            f"mail was told of the webhook failing {failing}×, recovered {recovered}× (the service met "
            f"{must} failure(s) past the threshold, {may} that may be told; longest {longest:.0f}s)"
        )
    return ""


def _reloads_missing(sent: Sequence[float], events: Sequence[Mapping[str, Any]]) -> int:
    """SIGHUPs no reload answered within 30 s: `config.reloaded`, or `watchlist.rejected` when the watchlist
    was broken at that moment (both with reason SIGHUP)."""
    answers = ("config.reloaded", "watchlist.rejected")
    reloads = [_when(e) for e in events if e.get("event") in answers and e.get("reason") == "SIGHUP"]
    return sum(1 for at in sent if not any(at - 1.0 <= r <= at + 30.0 for r in reloads))


def _pct(values: Sequence[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]:.1f} s"


def print_report(report: Report, plan: Plan) -> None:
    incs = report.incarnations
    kills = sum(1 for i in incs if i.stopped_by == "kill")
    terms = sum(1 for i in incs if i.stopped_by == "term")
    print(f"\nsoak: {plan.seconds / 60:g} min on {plan.db}, {plan.trials} trials, seed {plan.seed}")
    stops = [i.ended_at - i.signal_at for i in incs if i.stopped_by == "term" and i.ended_at and i.signal_at]
    print(
        f"service runs: {len(incs)} (SIGKILL {kills}, SIGTERM {terms}: stopped in at most "
        f"{max(stops, default=0):.1f} s); API faults injected: "
        + ", ".join(f"{k} {v}" for k, v in sorted(report.faults.items()))
    )
    print(
        "channel trouble: "
        + "; ".join(
            f"{c}: " + ", ".join(f"{m} {n}" for m, n in sorted(d.items())) for c, d in sorted(report.moods.items())
        )
    )
    print(
        "poll cycles: "
        + ", ".join(f"{k} {v}" for k, v in sorted(report.cycles.items(), key=lambda kv: -kv[1]))
        + " (api_failed: the cycle's /version request met a fault, or most trials failed alike)"
    )
    for note in report.notes:
        print(note)
    names = sorted(report.channels)
    rows: list[tuple[str, list[str]]] = [
        ("changes made", [str(report.made)] * len(names)),
        ("changes delivered", [str(report.channels[n].delivered) for n in names]),
        ("lost", [str(len(report.channels[n].lost)) for n in names]),
        ("wrong value", [str(len(report.channels[n].wrong_value)) for n in names]),
        ("false alerts", [str(len(report.channels[n].false_alerts)) for n in names]),
        (
            "messages accepted (changes/other)",
            [f"{report.channels[n].change_messages}/{report.channels[n].other_messages}" for n in names],
        ),
        ("duplicates in the window", [str(len(report.channels[n].duplicates_in_window)) for n in names]),
        ("duplicates outside it", [str(len(report.channels[n].duplicates_outside)) for n in names]),
        ("later than the bound", [str(len(report.channels[n].too_late)) for n in names]),
        ("without Idempotency-Key", [str(report.channels[n].idempotency_missing) for n in names]),
        ("latency p50", [_pct(report.channels[n].latencies, 0.5) for n in names]),
        ("latency p95", [_pct(report.channels[n].latencies, 0.95) for n in names]),
        ("latency max", [_pct(report.channels[n].latencies, 1.0) for n in names]),
        ("  of it unexplained, max", [_pct(report.channels[n].unexplained, 1.0) for n in names]),
        ("clock stopped (faults)", [f"{report.channels[n].blocked_share:.0%}" for n in names]),
    ]
    width = max(len(r[0]) for r in rows) + 2
    print(
        f"latency bound: {plan.latency_bound:.0f} s of a change's wait that no injected fault explains (API "
        "faults, restarts, the storage fault, the channel's refusals and their back-off stop the clock)"
    )
    print("\n" + "".ljust(width) + "".join(n.rjust(12) for n in names))
    for label, cells in rows:
        print(label.ljust(width) + "".join(c.rjust(12) for c in cells))
    rss = report.rss_kb
    print()
    print(f"{'crashes'.ljust(width)}{len(report.crashes)}")
    print(f"{'secret hits (logs, DB)'.ljust(width)}{len(report.secret_hits)}")
    print(f"{'broken watchlist rejected'.ljust(width)}{'yes' if report.watchlist_rejected else 'NO'}")
    print(f"{'unhealthy (unexplained)'.ljust(width)}{len(report.unhealthy)}")
    print(f"{'failed by a storage fault'.ljust(width)}{report.expected_failures} (cycles/ticks, expected)")
    print(f"{'SIGHUP without reload'.ljust(width)}{report.reloads_missing}")
    if report.channel_alerts:
        verdict = "NOT TESTED" if report.channel_alerts.startswith("not tested") else "WRONG"
        print(f"{'channel failing alerts'.ljust(width)}{verdict}: {report.channel_alerts}")
    if rss:
        print(
            f"{'RSS first/last/max'.ljust(width)}{rss[0] / 1024:.0f} / {rss[-1] / 1024:.0f} / {max(rss) / 1024:.0f} MB"
        )
    details = [
        ("lost", [f"{m.nct_id} {m.field} → {m.new}" for r in report.channels.values() for m in r.lost]),
        ("wrong value", [x for r in report.channels.values() for x in r.wrong_value]),
        ("false alert", [x for r in report.channels.values() for x in r.false_alerts]),
        ("duplicate outside the window", [x for r in report.channels.values() for x in r.duplicates_outside]),
        ("later than the bound", [x for r in report.channels.values() for x in r.too_late]),
        ("crash", report.crashes),
        ("unhealthy", report.unhealthy),
        ("secret", report.secret_hits),
    ]
    for label, items in details:
        for item in items[:20]:
            print(f"  {label}: {item}")
    for name in names:
        for title, count in sorted(report.channels[name].others.items(), key=lambda kv: -kv[1]):
            print(f"  {name} also got {count}× {title!r}")
    print("\nverdict: " + ("clean" if report.clean else "PROBLEMS (see above)"))
