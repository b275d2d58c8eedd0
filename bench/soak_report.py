"""The soak's verdict: what was changed against what each channel accepted, and what the logs say.

Kept apart from the run so it can be read (and tested) on its own: it takes plain records of the
run — the changes made, the service's incarnations, the deliveries — and returns a `Report`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.soak_peers import Delivered

if TYPE_CHECKING:
    from bench.soak import Plan, Soak

CRASH_EVENTS = frozenset({"trial.crashed", "cycle.crashed", "notify.tick_crashed"})
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
    changes: tuple[tuple[str, str], ...]  # (field, new value as text)
    at: float
    message_id: int | None
    idempotency_ok: bool = True
    title: str = ""


def parse(delivered: Delivered) -> Message:
    if delivered.body is not None:  # the JSON webhook
        body = delivered.body
        kind = str(body.get("kind"))
        message_id = body.get("message_id")
        key_ok = delivered.headers.get("Idempotency-Key") == f"trialwatch-{message_id}"
        trial = body.get("trial") or {}
        changes = tuple(
            (str(c["field"]), json.dumps(c["new"]) if not isinstance(c["new"], str) else c["new"])
            for c in body.get("changes", [])
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
    changes = []
    for line in delivered.text.splitlines():
        if line[:1].strip() and ": " in line and " → " in line and not line.startswith("NCT"):
            name, rest = line.split(": ", 1)
            changes.append((name, rest.split(" → ", 1)[1]))
    return Message(
        "changes", ("version", match.group(1), int(match.group(2))), match.group(1), tuple(changes), delivered.at, None
    )


def delivered_keys(delivered: Iterable[Delivered]) -> set[tuple[str, str]]:
    return {
        (m.nct_id, name)
        for m in map(parse, list(delivered))
        if m.kind == "changes" and m.nct_id
        for name, _ in m.changes
    }


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

    @property
    def clean(self) -> bool:
        bad = [
            r.lost or r.false_alerts or r.wrong_value or r.duplicates_outside or r.idempotency_missing
            for r in self.channels.values()
        ]
        return not (any(bad) or self.crashes or self.secret_hits or not self.watchlist_rejected)


def _when(event: Mapping[str, Any]) -> float:
    return datetime.fromisoformat(str(event.get("timestamp", "")).replace("Z", "+00:00")).timestamp()


def _in_window(channel: str, first: Message, incarnations: Sequence[Incarnation]) -> bool:
    """The README's window: the process died by a signal after the channel accepted the message
    and before it logged `notify.sent` (which follows the commit of the `sent` mark)."""
    alive = [i for i in incarnations if i.started_at <= first.at <= (i.ended_at or float("inf"))]
    for inc in alive:
        if inc.stopped_by not in {"kill", "term"} or inc.exit_code == 0:
            continue  # a clean SIGTERM stop finishes what it sent
        for event in inc.events():
            if event.get("event") != "notify.sent" or event.get("channel") != channel:
                continue
            same = (
                event.get("message_id") == first.message_id
                if first.message_id is not None
                else event.get("nct_id") == first.nct_id
            )
            if same and _when(event) >= first.at - 1.0:
                break
        else:
            return True
    return False


def _channel(
    name: str, items: Sequence[Delivered], made: Sequence[Made], incarnations: Sequence[Incarnation]
) -> ChannelResult:
    result = ChannelResult(accepted=len(items))
    truth = {(m.nct_id, m.field): m for m in made}
    first_seen: dict[tuple[str, str], float] = {}
    copies: dict[tuple[Any, ...], list[Message]] = defaultdict(list)
    for message in sorted(map(parse, items), key=lambda m: m.at):
        if message.kind != "changes":
            _count_other(result, message)
            continue
        result.change_messages += 1
        copies[message.key].append(message)
        if message.message_id is not None and not message.idempotency_ok:
            result.idempotency_missing += 1
        if len(copies[message.key]) == 1:
            _check_against_truth(result, message, truth, first_seen)
    for change in made:
        seen = first_seen.get((change.nct_id, change.field))
        if seen is None:
            result.lost.append(change)
        else:
            result.latencies.append(seen - change.at)
    result.delivered = len(first_seen)
    _sort_duplicates(result, name, copies, incarnations)
    return result


def _count_other(result: ChannelResult, message: Message) -> None:
    """An alert or a heartbeat, counted by its title with numbers and NCT IDs masked."""
    result.other_messages += 1
    title = re.sub(r"NCT\d{8}", "NCT…", re.sub(r"\b\d+\b", "N", message.title))[:90]
    result.others[title] = result.others.get(title, 0) + 1


def _check_against_truth(
    result: ChannelResult,
    message: Message,
    truth: Mapping[tuple[str, str], Made],
    first_seen: dict[tuple[str, str], float],
) -> None:
    """Each change of a message's first copy: one nobody made, one with another value, or one made
    (its first delivery noted in `first_seen`)."""
    for field_name, new in message.changes:
        change = truth.get((str(message.nct_id), field_name))
        label = f"{message.nct_id} {field_name} → {new}"
        if change is None:
            result.false_alerts.append(label)
        elif str(change.new) not in new:
            result.wrong_value.append(f"{label} (made: {change.new})")
        else:
            first_seen.setdefault((change.nct_id, change.field), message.at)


def _sort_duplicates(
    result: ChannelResult,
    name: str,
    copies: Mapping[tuple[Any, ...], list[Message]],
    incarnations: Sequence[Incarnation],
) -> None:
    """Every copy after a message's first, in the documented window or outside it."""
    for key, found in copies.items():
        for extra in found[1:]:
            label = f"{key} again after {extra.at - found[0].at:.1f}s"
            in_window = _in_window(name, found[0], incarnations)
            (result.duplicates_in_window if in_window else result.duplicates_outside).append(label)


def _crashes(incarnations: Sequence[Incarnation]) -> list[str]:
    found = []
    for inc in incarnations:
        expected = {"kill": {-9}, "term": {0}}.get(inc.stopped_by or "", set())
        if inc.stopped_by == "term" and not any(e.get("event") == "service.started" for e in inc.events()):
            expected = {0, -15}  # SIGTERM while still importing, before its handlers: as systemd would see it
        if inc.exit_code is not None and inc.exit_code not in expected:
            found.append(f"run {inc.number}: exit {inc.exit_code} (stopped by {inc.stopped_by})")
        if inc.stop_hung:
            found.append(f"run {inc.number}: SIGTERM did not stop it within the stop timeout + 15 s")
        text = inc.err.read_text(errors="replace") + inc.out.read_text(errors="replace")
        tracebacks = sum(
            1
            for line in text.splitlines()
            if line.startswith("Traceback") or ('"exception"' in line and line.startswith("{"))
        )
        named = [e["event"] for e in inc.events() if e.get("event") in CRASH_EVENTS]
        if tracebacks or named:
            found.append(f"run {inc.number}: {tracebacks} traceback(s) {sorted(set(named))}")
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


def analyse(runner: Soak, delivered: Mapping[str, Sequence[Delivered]], url: str, planted: Sequence[str]) -> Report:
    moods: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, channel, mood in runner.moods:
        if mood != "ok":
            moods[channel][mood] += 1
    incarnations = runner.service.incarnations
    events = [e for inc in incarnations for e in inc.events()]
    rejected = any(e.get("event") == "watchlist.rejected" for e in events)
    cycles: dict[str, int] = defaultdict(int)
    for event in events:
        if event.get("event") == "cycle.done":
            cycles[str(event.get("result"))] += 1
    return Report(
        made=len(runner.made),
        channels={name: _channel(name, items, runner.made, incarnations) for name, items in delivered.items()},
        incarnations=incarnations,
        crashes=_crashes(incarnations),
        secret_hits=_secret_hits(runner, url, planted),
        rss_kb=[kb for _, kb in runner.service.rss],
        faults=dict(runner.faults),
        moods={k: dict(v) for k, v in moods.items()},
        notes=runner.notes,
        watchlist_rejected=rejected or not any("watchlist broken" in n for n in runner.notes),
        cycles=dict(cycles),
    )


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
        ("without Idempotency-Key", [str(report.channels[n].idempotency_missing) for n in names]),
        ("latency p50", [_pct(report.channels[n].latencies, 0.5) for n in names]),
        ("latency p95", [_pct(report.channels[n].latencies, 0.95) for n in names]),
        ("latency max", [_pct(report.channels[n].latencies, 1.0) for n in names]),
    ]
    width = max(len(r[0]) for r in rows) + 2
    print("\n" + "".ljust(width) + "".join(n.rjust(12) for n in names))
    for label, cells in rows:
        print(label.ljust(width) + "".join(c.rjust(12) for c in cells))
    rss = report.rss_kb
    print()
    print(f"{'crashes'.ljust(width)}{len(report.crashes)}")
    print(f"{'secret hits (logs, DB)'.ljust(width)}{len(report.secret_hits)}")
    print(f"{'broken watchlist rejected'.ljust(width)}{'yes' if report.watchlist_rejected else 'NO'}")
    if rss:
        print(
            f"{'RSS first/last/max'.ljust(width)}{rss[0] / 1024:.0f} / {rss[-1] / 1024:.0f} / {max(rss) / 1024:.0f} MB"
        )
    details = [
        ("lost", [f"{m.nct_id} {m.field} → {m.new}" for r in report.channels.values() for m in r.lost]),
        ("wrong value", [x for r in report.channels.values() for x in r.wrong_value]),
        ("false alert", [x for r in report.channels.values() for x in r.false_alerts]),
        ("duplicate outside the window", [x for r in report.channels.values() for x in r.duplicates_outside]),
        ("crash", report.crashes),
        ("secret", report.secret_hits),
    ]
    for label, items in details:
        for item in items[:20]:
            print(f"  {label}: {item}")
    for name in names:
        for title, count in sorted(report.channels[name].others.items(), key=lambda kv: -kv[1]):
            print(f"  {name} also got {count}× {title!r}")
    print("\nverdict: " + ("clean" if report.clean else "PROBLEMS (see above)"))
