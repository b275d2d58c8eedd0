"""The soak's latency clock: how long a change took while nothing the soak injected held it back.

A change made just before a run of failing cycles, a restart, the database going away or its channel
refusing waits for them, legitimately; a constant bound either forgives a real delay (set high enough
for the worst schedule) or fails a run for its own faults (set low). So each change is held to a budget
of *unblocked* seconds: the clock stops inside every window the soak's own schedule explains —

- an API fault the fake served (from the request it answered until the next cycle could succeed),
- a restart (from the signal until the next process serves and could run a cycle),
- a storage fault (until the next cycle after it),
- a refusal of the change's channel (until the retry the back-off schedules: 30 s, doubling),

and runs otherwise. A service that sits on a change while nothing is wrong (a stuck notifier, a lease
held for minutes, a cycle that never comes) runs the clock past the budget and fails the soak.

Pure: plain windows in, seconds out; `tests/bench/test_soak_report.py` drives it with synthetic logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Window:
    """A span of the run (time.time()) in which something was done to the service: a storage fault, a
    long channel outage, an API fault, a restart."""

    what: str
    start: float
    end: float

    def holds(self, at: float, grace: float = 0.0) -> bool:
        return self.start - 1.0 <= at <= self.end + grace


class Answered(Protocol):
    """A request a channel peer answered (`bench.soak_peers.Met`)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def accepted(self) -> bool: ...


def retry_delay(attempts: int) -> float:
    """The service's back-off after the `attempts`-th refusal of a message (`watcher.notify.delivery`):
    30 s, 1 min, 2 min, … capped at one hour."""
    return float(min(30 * 2 ** max(attempts - 1, 0), 3600))


FaultMet = tuple[float, str, tuple[str, ...]]
"""(time, kind, the trials it was set for: none for a fault on any request) of a request the fake
answered with a fault (`FakeCtGov.faults_met`)."""


def api_windows(met: Iterable[FaultMet], hold: Mapping[str, float]) -> tuple[list[Window], dict[str, list[Window]]]:
    """Each request the fake answered with a fault holds changes back for `hold[kind]` seconds: a retry's
    back-off when the client retries it (5xx, 429, a reset, a timeout: the fault's delay too), the next
    cycle when it fails the cycle (HTML, truncated JSON: the interval and the cycle itself). A fault set
    for given trials (a partial record of a trial just edited) holds back those trials only: returned
    apart, by NCT ID."""
    common: list[Window] = []
    by_trial: dict[str, list[Window]] = {}
    for at, kind, ids in met:
        window = Window(f"API fault {kind}", at, at + hold.get(kind, max(hold.values(), default=0.0)))
        if not ids:
            common.append(window)
        for nct_id in ids:
            by_trial.setdefault(nct_id, []).append(window)
    return common, by_trial


def refusal_windows(met: Sequence[Answered], slack: float) -> list[Window]:
    """A channel's refusals as the service met them: the head message waits for its retry, which backs
    off with each refusal since the channel last accepted one (a channel's queue goes out in order)."""
    windows, refused = [], 0
    for request in sorted(met, key=lambda m: m.start):
        if request.accepted:
            refused = 0
            continue
        refused += 1
        windows.append(Window("refused", request.start, request.end + retry_delay(refused) + slack))
    return windows


def failing_spans(met: Sequence[Answered], until: float) -> list[tuple[float, float]]:
    """When the service saw a channel failing: from a refusal after an acceptance (the answer's time, as
    `notify.failing.<name>` records it) to the next acceptance (`until` when none came)."""
    spans, since = [], None
    for request in sorted(met, key=lambda m: m.start):
        if request.accepted:
            if since is not None:
                spans.append((since, request.end))
            since = None
        elif since is None:
            since = request.end
    if since is not None:
        spans.append((since, until))
    return spans


def merged(windows: Iterable[Window]) -> list[tuple[float, float]]:
    """The union of the windows, as sorted disjoint spans."""
    spans: list[tuple[float, float]] = []
    for start, end in sorted((w.start, w.end) for w in windows if w.end > w.start):
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def running(start: float, end: float, blocked: Sequence[tuple[float, float]]) -> float:
    """Seconds of [start, end] outside every blocked span (`merged`)."""
    held = sum(max(0.0, min(e, end) - max(s, start)) for s, e in blocked)
    return max(0.0, end - start - held)


def share_blocked(start: float, end: float, blocked: Sequence[tuple[float, float]]) -> float:
    """The part of [start, end] the clock stood still: a soak whose clock never runs can fail nothing."""
    return 0.0 if end <= start else 1.0 - running(start, end, blocked) / (end - start)
