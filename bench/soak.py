"""Soak: the real service, for N minutes, against everything that goes wrong at once.

    python -m bench.soak --minutes 10 [--db sqlite|postgresql] [--seed 1] [--trials 300]

`trialwatch run` runs as a subprocess (as systemd would start it) against the fake ClinicalTrials.gov
API (tests/support/fakeapi.py, in a thread here) holding `--trials` studies derived from the real records,
an SMTP server that wants the password planted in the settings, and a webhook receiver whose path
carries the planted token (bench/soak_peers.py). While it runs:

- the soak edits trials on the fake (status, enrollment, acronym; each trial field at most once, so
  every edit is a change the service must report) and keeps the ground truth of what it changed, when;
- the API fails at random: 500, 503, 429, timeouts, resets, truncated JSON, HTML with status 200,
  partial records (no locations module, no hasResults) for trials just edited — one fault (for one or
  two requests) every 5 to 25 s, and never a new one while one waits: faults set faster than requests
  meet them pile up into an API that fails every request (80% of cycles failed so, and no change
  reached the webhook during its long outage, which the service then never met);
- each channel goes through outages (refuses at once) and hangs (accepts the connection, answers
  nothing until the hang ends, then refuses);
- the service is stopped every 20 to 60 s, by SIGKILL or SIGTERM, and started again at once;
- once, the watchlist is broken by a hand edit (an NCT ID one digit short), then fixed;
- some edits are taken back (A → B, delivered, then B → A): both must arrive, each with its old value;
- once, the database goes away (`--storage-for` s): SQLite's file may not grow (a full disk: a file-size
  limit set on the running service), PostgreSQL refuses connections to the service's database;
- once, the webhook refuses everything for `--outage-for` s (a channel down for an hour, compressed);
- once, the service is sent SIGHUP (a reload), which a `config.reloaded` must answer.

Then the chaos stops, and the soak waits (`--drain`, at most) until every change has reached both
channels, stops the service and prints what happened, judged per (trial, field, new value) across all
messages: changes made vs delivered per channel, lost, wrong values (old and new compared exactly),
duplicates (a value in two messages, or one message twice; in the documented window only when the
process was killed within seconds of the channel's acceptance and before the `sent` mark, or the
database was away), false alerts, deliveries that waited more than `--latency-bound` seconds that no
fault the soak injected explains (`bench.soak_clock`: API faults, restarts, the storage fault and the
channel's own refusals stop the clock), whether the mail was told of each webhook failure past
`notify.channel_failing_after` that the service met (and of its recovery), crashes, `service.unhealthy`
no storage fault explains, secrets in the logs and the database, the service's RSS. Everything binds to
127.0.0.1. Exit status 1 when anything was lost, invented, late, leaked or crashed, or the long outage
tested nothing.

`--code PATH` runs the service from another checkout (e.g. the main branch) with this soak.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import resource
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.soak_clock import Window  # noqa: E402
from bench.soak_peers import SmtpPeer, WebhookPeer  # noqa: E402
from bench.soak_report import (  # noqa: E402
    Made,
    Report,
    Schedule,
    analyse,
    as_text,
    delivered_keys,
    made_keys,
    print_report,
    told,
)
from bench.soak_service import STOP_TIMEOUT, ServiceProcess  # noqa: E402
from tests.support import shared  # noqa: E402
from tests.support.fakeapi import FakeCtGov, synthetic_studies  # noqa: E402
from tests.support.peers import free_port  # noqa: E402

STATUSES = ("RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "SUSPENDED", "TERMINATED", "ENROLLING_BY_INVITATION")
API_FAULTS = ("500", "503", "429", "timeout", "reset", "truncated", "html", "partial")
API_TIMEOUT = 3.0
BACKOFF = 4.0
"""Seconds one retry of the client waits at most: `backoff_max` or `retry_after_max`, both 2 below."""
CYCLE_TIME = 10.0
"""Seconds a cycle of a few hundred trials may take on a loaded machine (a benchmark beside it)."""
Arrived = dict[str, set[tuple[str, str, str]]]  # channel → (trial, field, new value as the channel spells it)


@dataclass
class Plan:
    """The run's knobs; the defaults are the issue's soak, `smoke` shrinks it for the test suite."""

    seconds: float
    trials: int = 300
    seed: int = 1
    db: str = "sqlite"
    drain: float = 240.0
    signal_every: tuple[float, float] = (20.0, 60.0)
    change_every: tuple[float, float] = (1.0, 3.0)
    fault_every: tuple[float, float] = (5.0, 25.0)
    fault_times: tuple[int, int] = (1, 2)  # requests one API fault answers
    mood_every: tuple[float, float] = (20.0, 50.0)
    broken_at: float = 0.35  # of the run
    broken_for: float = 15.0
    interval: str = "4s"
    latency_bound: float = 60.0  # seconds of a change's wait no injected fault explains
    revert_share: float = 0.3  # of edits: take back one already delivered (A → B → A)
    storage_at: float = 0.55  # of the run
    storage_for: float = 20.0
    outage_at: float = 0.12
    outage_for: float = 0.0  # 0: none
    hup_at: float = 0.75
    code: Path | None = None


@dataclass
class WatchlistBreak:
    """The operator's one hand edit: the watchlist is saved broken at `start` and fixed `length` s later."""

    start: float
    length: float
    done: bool = False  # the broken watchlist was written
    due: float = 0.0  # the first `start`: postponing it (no serving service yet) does not make it wait less

    def __post_init__(self) -> None:
        self.due = self.start

    def active(self, now: float) -> bool:
        return self.start <= now < self.start + self.length

    def waiting(self, now: float) -> bool:
        """Its time has come but not the service it must meet (restarts hold off until then)."""
        return now >= self.due and not self.done


@dataclass
class Soak:
    plan: Plan
    workdir: Path
    rng: random.Random = field(init=False)
    made: list[Made] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    moods: list[tuple[float, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    storage_windows: list[Window] = field(default_factory=list)
    outage_windows: dict[str, list[Window]] = field(default_factory=dict)
    sighups: list[float] = field(default_factory=list)
    _broken: bool = False
    _reverted: set[tuple[str, str]] = field(default_factory=set)
    _fault: contextlib.ExitStack | None = None
    _fault_started: tuple[float, str] = (0.0, "")
    _outage_over: bool = False
    failing_after: float | None = None  # notify.channel_failing_after as set (None: the code has no such setting)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.plan.seed)
        self.password = "pw-" + secrets.token_hex(12)
        self.token = "tok-" + secrets.token_hex(12)
        self.ids = [f"NCT{90_000_001 + i:08d}" for i in range(self.plan.trials)]
        self.settings = self.workdir / "trialwatch.yaml"
        self.watchlist = self.workdir / "watchlist.yaml"
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.service = ServiceProcess(self.settings, self.workdir, self.logs)
        if self.plan.code is not None:
            self.service.code = self.plan.code
        self.storage_url = ""

    # -- set-up --------------------------------------------------------------------------------

    def write_config(self, api_url: str, smtp_port: int, hook_port: int, storage_url: str) -> None:
        self.settings.write_text(f"""\
watchlist: watchlist.yaml
state_dir: state
api:
  base_url: {api_url}
  requests_per_second: 0
  timeout: {API_TIMEOUT}
  backoff_base: 0.2
  backoff_max: 2
  retry_after_max: 2
storage:
  url: {storage_url}
schedule:
  interval: {self.plan.interval}
  watch_interval: 1s
  notify_interval: 1s
  stop_timeout: {STOP_TIMEOUT:.0f}s
notify:
  claim_timeout: 30s
{self._failing_after()}channels:
  mail:
    url: mailto://soak:{self.password}@127.0.0.1:{smtp_port}?to=soak@example.org&from=trialwatch@example.org
    minor: immediate  # the soak judges every change as it happens, not in tomorrow's digest
  hook:
    url: json://127.0.0.1:{hook_port}/hook/{self.token}
""")
        self.write_watchlist(broken=False)

    def _failing_after(self) -> str:
        """`notify.channel_failing_after`, compressed like the outage, for code that knows the setting."""
        settings = (self.plan.code or ROOT) / "watcher" / "config" / "settings.py"
        if not self.plan.outage_for or "channel_failing_after" not in settings.read_text():
            return ""
        self.failing_after = round(self.plan.outage_for / 2)
        return f"  channel_failing_after: {self.failing_after:.0f}s\n"

    def write_watchlist(self, *, broken: bool) -> None:
        lines = ["trials:", *(f"  - {nct}" for nct in self.ids)]
        if broken:  # a hand edit: one ID a digit short
            lines.append("  - NCT9000001")
        self._broken = broken
        tmp = self.watchlist.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.watchlist)

    def schedule(self, fake: FakeCtGov, smtp: SmtpPeer, hook: WebhookPeer) -> Schedule:
        """The faults as they met the service, for the latency clock and the channel alerts."""
        interval = float(self.plan.interval.removesuffix("s"))
        settle = interval + CYCLE_TIME
        retried = BACKOFF + 2.0  # the client retries it (twice at most: fault_times) within the cycle
        hold = dict.fromkeys(("500", "503", "429", "reset"), retried)
        hold["timeout"] = API_TIMEOUT + retried
        hold.update(dict.fromkeys(("html", "truncated", "partial"), settle + 2.0))  # the next cycle
        return Schedule(
            api=list(fake.faults_met),
            answered={"mail": list(smtp.mood.met), "hook": list(hook.mood.met)},
            api_hold=hold,
            settle=settle,
            failing_after=self.failing_after,
            until=time.time(),
            kills=[i.signal_at for i in self.service.incarnations if i.stopped_by == "kill" and i.signal_at],
        )

    def save_truth(self, delivered: dict[str, list[Any]], schedule: Schedule) -> None:
        """The ground truth, what arrived and the faults as they met the service, as JSON beside the
        logs, to look into a verdict later."""
        (self.workdir / "made.json").write_text(json.dumps([vars(m) for m in self.made], indent=1))
        (self.workdir / "schedule.json").write_text(
            json.dumps(
                {
                    "api": schedule.api,
                    "answered": {n: [vars(m) for m in met] for n, met in schedule.answered.items()},
                    "kills": schedule.kills,
                    "moods": self.moods,
                },
                indent=1,
            )
        )
        (self.workdir / "delivered.json").write_text(
            json.dumps({name: [vars(d) for d in items] for name, items in delivered.items()}, indent=1, default=str)
        )

    # -- chaos ---------------------------------------------------------------------------------

    def change_one(self, fake: FakeCtGov, delivered: Callable[[], Arrived]) -> None:
        if self.rng.random() < self.plan.revert_share and self.revert_one(fake, delivered()):
            return
        used = {(m.nct_id, m.field) for m in self.made}
        for _ in range(50):
            nct = self.rng.choice(self.ids)
            name = self.rng.choice(("status.overallStatus", "design.enrollmentCount", "identification.acronym"))
            if (nct, name) not in used:
                break
        else:
            return
        serial = len(self.made) + 1
        chosen: dict[str, Any] = {}

        def edit(study: dict[str, Any]) -> None:
            protocol = study["protocolSection"]
            if name == "status.overallStatus":
                status = protocol["statusModule"]
                chosen["old"] = status.get("overallStatus")
                status["overallStatus"] = self.rng.choice([s for s in STATUSES if s != chosen["old"]])
                chosen["new"] = status["overallStatus"]
            elif name == "design.enrollmentCount":
                info = protocol.setdefault("designModule", {}).setdefault("enrollmentInfo", {})
                chosen["old"] = info.get("count")
                info["count"] = int(info.get("count") or 0) + self.rng.randint(1, 999)
                chosen["new"] = info["count"]
            else:
                ident = protocol["identificationModule"]
                chosen["old"] = ident.get("acronym")
                ident["acronym"] = chosen["new"] = f"SOAK{serial}"

        fake.update(nct, edit)
        self.made.append(Made(nct, name, chosen["old"], chosen["new"], time.time()))
        if self.rng.random() < 0.15:  # the next full fetch of this trial may come back partial
            fake.fail("partial", ids=[nct], times=2)
            self.faults["partial (edited trial)"] = self.faults.get("partial (edited trial)", 0) + 1

    def revert_one(self, fake: FakeCtGov, delivered: Arrived) -> bool:
        """Take back an edit both channels have reported (A → B → A); False when none is ready."""
        ready = [
            m
            for m in self.made
            if (m.nct_id, m.field) not in self._reverted
            and all(
                (m.nct_id, m.field, as_text(m.new, json_body=name == "hook")) in keys
                for name, keys in delivered.items()
            )
        ]
        if not ready:
            return False
        back = self.rng.choice(ready)
        self._reverted.add((back.nct_id, back.field))

        def edit(study: dict[str, Any]) -> None:
            protocol = study["protocolSection"]
            if back.field == "status.overallStatus":
                holder, key = protocol["statusModule"], "overallStatus"
            elif back.field == "design.enrollmentCount":
                holder, key = protocol["designModule"]["enrollmentInfo"], "count"
            else:
                holder, key = protocol["identificationModule"], "acronym"
            if back.old is None:
                holder.pop(key, None)
            else:
                holder[key] = back.old

        fake.update(back.nct_id, edit)
        self.made.append(Made(back.nct_id, back.field, back.new, back.old, time.time()))
        self.faults["edit taken back"] = self.faults.get("edit taken back", 0) + 1
        return True

    def api_fault(self, fake: FakeCtGov) -> None:
        """One fault, unless one still waits for its request: the registry's faults come and go, they
        do not queue up for the next requests."""
        if fake.faults_pending(records=True):
            return
        kind = self.rng.choice(API_FAULTS)
        fake.fail(kind, times=self.rng.randint(*self.plan.fault_times), delay=API_TIMEOUT + 1)
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def channel_mood(self, peer: SmtpPeer | WebhookPeer, name: str) -> Callable[[], float]:
        def turn() -> float:
            if peer.mood.value != "ok":
                peer.mood.set("ok")
                self.moods.append((time.time(), name, "ok"))
                return self.rng.uniform(*self.plan.mood_every)
            mood = self.rng.choice(("refuse", "refuse", "hang"))
            peer.mood.set(mood)
            self.moods.append((time.time(), name, mood))
            return self.rng.uniform(3.0, 15.0)  # how long the outage or hang lasts

        return turn

    # -- the run -------------------------------------------------------------------------------

    def run(self, fake: FakeCtGov, smtp: SmtpPeer, hook: WebhookPeer) -> None:
        self.service.start()
        sampler = threading.Thread(target=self.service.sample_rss, daemon=True)
        sampler.start()
        self.service.wait_first_cycle(timeout=120)
        self.service.rss.clear()  # from here on: a process past its imports and first (initial-sync) cycle
        started = time.time()
        end = started + self.plan.seconds
        edit = WatchlistBreak(started + self.plan.seconds * self.plan.broken_at, self.plan.broken_for)
        trouble = self._trouble(fake, smtp, hook)
        spans = self._spans(started)
        due = {
            "change": started + self.rng.uniform(*self.plan.change_every),
            "fault": started + self.rng.uniform(*self.plan.fault_every),
            "signal": started + self.rng.uniform(*self.plan.signal_every),
            "mail": started + self.rng.uniform(*self.plan.mood_every),
            "hook": started + self.rng.uniform(*self.plan.mood_every),
        }
        # past the end only to let the watchlist edit happen (it waits for a serving service), 60 s at most
        while (now := time.time()) < end or ((not edit.done or self._broken) and now < end + 60):
            self.service.keep_alive()
            broken = self._break_watchlist(edit, now, started)
            quiet = self._interventions(spans, now, hook)
            for name, act in trouble.items():
                if now >= due[name] and not (name == "hook" and spans["outage"].start <= now < spans["outage"].end):
                    due[name] = now + act()
            # a service started on a broken watchlist would exit; one still to meet the edit must be serving;
            # a storage fault is set on one process (and a restart into a refusing database would fail)
            if now >= due["signal"] and not broken and not edit.waiting(now) and not quiet:
                self.service.stop(self.rng.choice(("kill", "term")))
                self.service.start()
                due["signal"] = time.time() + self.rng.uniform(*self.plan.signal_every)
            time.sleep(0.1)
        if self._broken:
            self.write_watchlist(broken=False)
        self._end_storage_fault()
        self._drain(fake, smtp, hook)

    def _trouble(self, fake: FakeCtGov, smtp: SmtpPeer, hook: WebhookPeer) -> dict[str, Callable[[], float]]:
        """Each kind of trouble but the restarts, in the order it is dealt: do it, and say in how many
        seconds it comes again."""

        def arrived() -> Arrived:
            return {"hook": delivered_keys(hook.delivered), "mail": delivered_keys(smtp.delivered)}

        def change() -> float:
            self.change_one(fake, arrived)
            return self.rng.uniform(*self.plan.change_every)

        def fault() -> float:
            self.api_fault(fake)
            return self.rng.uniform(*self.plan.fault_every)

        return {
            "change": change,
            "fault": fault,
            "mail": self.channel_mood(smtp, "mail"),
            "hook": self.channel_mood(hook, "hook"),
        }

    # -- the soak's own interventions: a storage fault, a long channel outage, a reload -----------

    def _spans(self, started: float) -> dict[str, Window]:
        plan = self.plan
        storage = started + plan.seconds * plan.storage_at
        outage = started + plan.seconds * plan.outage_at
        hup = started + plan.seconds * plan.hup_at
        return {
            "storage": Window("storage", storage, storage + plan.storage_for if plan.storage_for else storage),
            "outage": Window("outage", outage, outage + plan.outage_for),
            "hup": Window("hup", hup, hup),
        }

    def _interventions(self, spans: dict[str, Window], now: float, hook: WebhookPeer) -> bool:
        """Start and end each when its time comes; True while restarts must wait (a storage fault is set
        on one process, and a restart into a refusing database would fail)."""
        storage, outage, hup = spans["storage"], spans["outage"], spans["hup"]
        if self.plan.storage_for and now >= storage.start:  # late when a slow stop held the loop: still once
            if self._fault is None and not self.storage_windows and self.service.serving():
                self._start_storage_fault()  # on a serving service: a start on a full disk is another test
            elif self._fault is not None and now >= self._fault_started[0] + self.plan.storage_for:
                self._end_storage_fault()
        if outage.start < outage.end:
            if outage.start <= now < outage.end and hook.mood.value != "refuse":
                hook.mood.set("refuse")
                self.outage_windows.setdefault("hook", [Window("outage", now, outage.end)])
            elif now >= outage.end and "hook" in self.outage_windows and not self._outage_over:
                hook.mood.set("ok")
                self._outage_over = True
                self.notes.append(f"webhook refused everything for {self.plan.outage_for:.0f}s")
        if now >= hup.start and not self.sighups and self.service.serving() and self.service.hup():
            self.sighups.append(now)
        reloading = bool(self.sighups) and now < self.sighups[0] + 10.0  # the reload must meet a live service
        return self._fault is not None or reloading

    def _start_storage_fault(self) -> None:
        pid = self.service.pid()
        if pid is None:
            return
        self._fault = contextlib.ExitStack()
        at = time.time()
        if self.plan.db == "sqlite":
            soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))  # no file may grow: the disk is full

            def restore() -> None:
                with contextlib.suppress(ProcessLookupError):
                    resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))

            self._fault.callback(restore)
            what = "disk full (SQLite may not grow its files)"
        else:
            from tests.support.databases import refuse_connections

            self._fault.enter_context(refuse_connections(self.storage_url))
            what = "PostgreSQL refusing connections to the database"
        self._fault_started = (at, what)

    def _end_storage_fault(self) -> None:
        if self._fault is None:
            return
        self._fault.close()
        self._fault = None
        at, what = self._fault_started
        self.storage_windows.append(Window(what, at, time.time()))
        self.notes.append(f"storage fault for {time.time() - at:.0f}s: {what}")

    def _break_watchlist(self, edit: WatchlistBreak, now: float, started: float) -> bool:
        """Save the watchlist broken when its time comes, and fixed when that has passed; True while broken."""
        if not edit.done and now >= edit.start and not self.service.serving():
            # the edit must meet a running service: one still starting would read it and refuse to start
            edit.start = now + 0.2
        broken = edit.active(now)
        if broken and not edit.done:
            self.write_watchlist(broken=True)
            self.notes.append(f"watchlist broken at +{now - started:.0f}s for {self.plan.broken_for:.0f}s")
            edit.done = True
        elif edit.done and not broken and self._broken:
            self.write_watchlist(broken=False)
        return broken

    def _drain(self, fake: FakeCtGov, smtp: SmtpPeer, hook: WebhookPeer) -> None:
        fake.clear_faults()
        smtp.mood.set("ok")
        hook.mood.set("ok")
        drain_start = time.time()
        while time.time() - drain_start < self.plan.drain:
            self.service.keep_alive()
            failing, recovered = told(smtp.delivered)
            if (
                made_keys(self.made, json_body=False) <= delivered_keys(smtp.delivered)
                and made_keys(self.made, json_body=True) <= delivered_keys(hook.delivered)
                and failing == recovered  # a recovery is told after the last change, maybe
            ):
                break
            time.sleep(1.0)
        self.notes.append(f"drain took {time.time() - drain_start:.0f}s (at most {self.plan.drain:.0f}s)")
        time.sleep(2.0)  # a duplicate in flight has time to land
        self.service.stop("term")
        self.service.close()


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'state' / 'trialwatch.sqlite'}"
        return
    from tests.support.databases import postgres_database

    gen = postgres_database()
    try:
        yield next(gen)
    finally:
        gen.close()


def soak(plan: Plan, workdir: Path) -> Report:
    """Run the soak in `workdir` and print its report."""
    shared.study_paths()  # FixturesNotFound says where it looked
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's per-session chatter
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    runner = Soak(plan, workdir)
    fake = FakeCtGov(synthetic_studies(plan.trials)).start()
    smtp = SmtpPeer(free_port(), "soak", runner.password, hang_limit=60).start()
    hook = WebhookPeer(runner.token, hang_limit=60).start()
    try:
        with database(plan.db, workdir) as url:
            runner.storage_url = url
            runner.write_config(fake.base_url, smtp.port, hook.port, url)
            try:
                runner.run(fake, smtp, hook)
            finally:
                runner.service.close()
            schedule = runner.schedule(fake, smtp, hook)
            report = analyse(
                runner, {"mail": smtp.delivered, "hook": hook.delivered}, url, [runner.password, runner.token], schedule
            )
            runner.save_truth({"mail": smtp.delivered, "hook": hook.delivered}, schedule)
    finally:
        hook.stop()
        smtp.stop()
        fake.stop()
    report.auth_failures = smtp.auth_failures + hook.wrong_path
    print_report(report, plan)
    if plan.code is not None:
        print(f"(the service ran from {plan.code})")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the chaos lasts (default 10)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice (default 1)")
    parser.add_argument("--trials", type=int, default=300, help="watched trials (default 300)")
    parser.add_argument(
        "--drain",
        type=float,
        default=240.0,
        help="seconds to wait, at most, for the last deliveries (default 240: retries back off)",
    )
    parser.add_argument("--workdir", type=Path, help="keep logs and the database here (default: a temp dir, removed)")
    parser.add_argument("--storage-for", type=float, default=20.0, help="seconds the database is away (0: never)")
    parser.add_argument(
        "--outage-for", type=float, default=90.0, help="seconds the webhook refuses everything, once (0: never)"
    )
    parser.add_argument(
        "--latency-bound",
        type=float,
        default=60.0,
        help="seconds of a change's wait that no injected fault explains (default 60; bench/soak_clock.py)",
    )
    parser.add_argument("--code", type=Path, help="run the service from this checkout (default: this one)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a stopped soak still stops its service
    plan = Plan(
        seconds=args.minutes * 60,
        trials=args.trials,
        seed=args.seed,
        db=args.db,
        drain=args.drain,
        storage_for=args.storage_for,
        outage_for=args.outage_for,
        latency_bound=args.latency_bound,
        code=args.code.resolve() if args.code else None,
    )
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return 0 if soak(plan, args.workdir).clean else 1
    workdir = Path(tempfile.mkdtemp(prefix="trialwatch-soak-"))
    try:
        return 0 if soak(plan, workdir).clean else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
