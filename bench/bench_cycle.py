"""Benchmark: whole cycles as a user runs them, `python -m watcher --config FILE check`, against the fake API.

    python -m bench.bench_cycle --trials 10000 [--changed 1000] [--mix registry|small|fixtures]
                                [--db sqlite|postgresql] [--mode watchlist|registry] [--profile DIR]

The fake API runs as a separate process holding `trials` studies derived from the real records under new
IDs, in a size mix (`tests/support/fakeapi.py` MIXES; `registry`, the default: 85 % short records of
7-14 KB, 12 % of 26-100 KB, 3 % of 150-510 KB, an assumption stated there; `small`: only the short
ones). The settings file and a YAML watchlist of `trials` entries (every tenth with a label and tags, as a
user writes them) are written to a temporary directory; each cycle is the CLI in its own process, so
its CPU (user + system, from `wait4`), peak RSS and wall time are the process's own: interpreter
start, imports, reading the watchlist, the cycle, exit. One channel is configured with a weekday 08:00
digest, so changes become outbox rows but nothing is delivered during the run. Runs, in order:

  bare start     `python -m watcher --version` (median of 5): the floor every command pays
  first sync     nothing stored: every record fetched, stored and made a baseline
  idle           the registry unchanged since: nothing to fetch (median of 3)
  N changed      N studies have a new overall status (a notified change)
  --help, status, list   5 runs each: the commands a user runs between cycles (min and median CPU)

Printed per run: requests (counted by the fake), wall, CPU, peak RSS, and CPU as a multiple of `json.loads`
of the same records (timed here, one record at a time, from the bytes the fake serves): the first
sync against all records; the idle cycle above a bare start against all records; the changed cycle
above the idle cycle against the changed records, with the marginal CPU per changed record.
`--profile DIR` also runs each cycle once more under cProfile (slower; not the timed runs) and writes
DIR/<cycle>.prof and the top 30 lines by cumulative and by own time to DIR/<cycle>.txt.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REGISTRY = 560_000
# bytecode cache of the measured processes (outside the clone): a user's installed package has its .pyc
PYCACHE = Path(tempfile.gettempdir()) / "trialwatch-bench-pycache"
FIRST = 90_000_001


def nct(i: int) -> str:
    return f"NCT{FIRST + i:08d}"


@dataclass
class Run:
    """One process: its own wall, CPU (user + system) and peak RSS, and the requests the fake served."""

    name: str
    wall: float
    cpu: float
    rss_mb: float
    requests: int = 0
    code: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait4_run(name: str, cmd: list[str], cwd: Path) -> Run:
    """Start `cmd` and reap it with `wait4`, so CPU and peak RSS are this process's alone."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("TRIALWATCH_CONFIG", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode compiled
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            out.seek(0)
            raise SystemExit(
                f"bench_cycle: {name} exited {proc.returncode}:\n{err.read().decode()[-3000:]}\n"
                f"{out.read().decode()[-500:]}"
            )
    return Run(name, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def write_config(directory: Path, base_url: str, db_url: str, trials: int, mode: str) -> Path:
    """The settings file and the watchlist a user would write, `trials` entries long."""
    channel = [
        "channels:",
        "  bench:",
        "    url: json://127.0.0.1:9/bench",
        '    digest: "0 8 * * 1-5"',
    ]
    if mode == "registry":
        channel += [
            "    studies:",
            "      statuses: [RECRUITING, COMPLETED, NOT_YET_RECRUITING, ACTIVE_NOT_RECRUITING]",
        ]
    settings = [
        "watchlist: watchlist.yaml",
        "api:",
        f"  base_url: {base_url}",
        "  requests_per_second: 0",
        "storage:",
        f"  url: {db_url}",
        *channel,
    ]
    if mode == "registry":
        settings += ["registry:", "  all: true"]
    (directory / "trialwatch.yaml").write_text("\n".join(settings) + "\n", encoding="utf-8")
    lines = ["# the trials we follow", "trials:"]
    for i in range(trials if mode == "watchlist" else 0):
        if i % 10 == 0:
            lines += [f"  - id: {nct(i)}", f"    label: study {i} of the portfolio", "    tags: [oncology, phase3]"]
        else:
            lines.append(f"  - {nct(i)}  # added {2020 + i % 6}")
    if mode == "registry":
        lines = ["trials: []"]
    (directory / "watchlist.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory / "trialwatch.yaml"


def served_bodies(trials: int, mix: str, pick: set[int] | None, status: str | None) -> list[bytes]:
    from tests.support.fakeapi import synthetic_studies

    bodies = []
    for index, served in enumerate(synthetic_studies(trials, mix=mix)):
        if pick is not None and index not in pick:
            continue
        study = served
        if status is not None:
            protocol = study["protocolSection"]
            study = dict(
                study,
                protocolSection=dict(protocol, statusModule=dict(protocol["statusModule"], overallStatus=status)),
            )
        bodies.append(json.dumps(study, ensure_ascii=False).encode())
    return bodies


def loads_seconds(bodies: list[bytes], repeat: int = 3) -> float:
    """`json.loads` of every body, one at a time: the best of `repeat` passes."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for body in bodies:
            json.loads(body)
        best = min(best, time.process_time() - started)
    return best


def db_bytes(db_url: str) -> int:
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        size = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    engine.dispose()
    return size


def postgres_url() -> tuple[str, Any]:
    from tests.support.databases import postgres_database

    databases = postgres_database()
    return next(databases), databases


def median_run(runs: list[Run]) -> Run:
    by_cpu = sorted(runs, key=lambda r: r.cpu)
    return by_cpu[len(by_cpu) // 2]


def write_profile(prof: Path) -> None:
    text = io.StringIO()
    stats = pstats.Stats(str(prof), stream=text)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(30)
    prof.with_suffix(".txt").write_text(text.getvalue(), encoding="utf-8")


class Bench:
    """The fake, the configuration and the database of one run, and the runs in order."""

    def __init__(self, args: argparse.Namespace, tmp: Path, port: int, db_url: str) -> None:
        import httpx

        self.args = args
        self.tmp = tmp
        self.db_url = db_url
        self.control = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        self.config = write_config(tmp, f"http://127.0.0.1:{port}/api/v2", db_url, args.trials, args.mode)
        self.rows: list[Run] = []

    def cli(self, *argv: str, profile: str | None = None) -> list[str]:
        cmd = [sys.executable]
        if profile:
            cmd += ["-m", "cProfile", "-o", profile]
        return [*cmd, "-m", "watcher", "--log-level", "warning", "--config", str(self.config), *argv]

    def requests(self, *, reset: bool) -> int:
        count: int = self.control.post("/_fake/requests", json={"reset": reset}).json()["count"]
        return count

    def cycle(self, name: str, times: int = 1, before: Callable[[], None] | None = None) -> Run:
        runs = []
        for _ in range(times):
            if before is not None:
                before()
            self.requests(reset=True)
            run = _wait4_run(name, self.cli("check"), self.tmp)
            run.requests = self.requests(reset=False)
            runs.append(run)
        return median_run(runs)

    def profile(self, name: str, before: Callable[[], None] | None = None) -> None:
        if not self.args.profile:
            return
        if before is not None:
            before()
        out = Path(self.args.profile) / f"{name.replace(' ', '_')}.prof"
        out.parent.mkdir(parents=True, exist_ok=True)
        _wait4_run(name, self.cli("check", profile=str(out)), self.tmp)
        write_profile(out)

    def change(self, picks: list[int], status: str) -> None:
        for i in picks:
            self.control.post(
                "/_fake/update", json={"id": nct(i), "set": {"protocolSection.statusModule.overallStatus": status}}
            ).raise_for_status()

    def fresh_db(self) -> None:
        """Back to an empty database (for the profiled first sync)."""
        if self.db_url.startswith("sqlite"):
            for p in self.tmp.glob("bench.sqlite*"):
                p.unlink()
        else:
            from sqlalchemy import create_engine, text

            engine = create_engine(self.db_url)
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()

    def run(self) -> dict[str, Any]:
        args = self.args
        _wait4_run("warm-up", self.cli("--help"), self.tmp)  # fills the bytecode cache
        bare = median_run([_wait4_run("bare start", self.cli("--version"), self.tmp) for _ in range(5)])
        first = self.cycle("first sync")
        first_bytes = db_bytes(self.db_url)
        idle = self.cycle("idle", times=3)
        count = min(args.changed, args.trials)
        picks = sorted({(i * 7919) % args.trials for i in range(count)})
        changed = self.cycle(f"{len(picks):,} changed", before=lambda: self.change(picks, "COMPLETED"))
        commands = {
            " ".join(argv): [_wait4_run(" ".join(argv), self.cli(*argv), self.tmp) for _ in range(5)]
            for argv in (["--help"], ["status"], ["list"])
        }
        if args.profile:
            self.profile("idle")
            self.profile("changed", before=lambda: self.change(picks, "TERMINATED"))
            self.fresh_db()
            self.profile("first_sync")
        return {
            "rows": [bare, first, idle, changed],
            "commands": commands,
            "picks": picks,
            "first_bytes": first_bytes,
        }


def report(args: argparse.Namespace, result: dict[str, Any], all_loads: float, changed_loads: float) -> None:
    bare, first, idle, changed = result["rows"]
    n = len(result["picks"])
    print(
        f"\n{args.trials:,} synthetic studies (size mix {args.mix}); database {args.db}; mode {args.mode}; "
        f"CLI `check` processes; fake API without rate limit; python {sys.version.split()[0]}"
    )
    print(
        f"json.loads, one record at a time: all {args.trials:,} {all_loads:.3f} s CPU; "
        f"the {n:,} changed {changed_loads:.3f} s"
    )
    print(f"\n{'run':<14} {'requests':>8} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>11}  {'CPU as json.loads':<40}")
    ratio = {
        "bare start": "",
        "first sync": f"{first.cpu / all_loads:.1f}× of all records",
        "idle": f"{max(0.0, idle.cpu - bare.cpu) / all_loads:.2f}× of all records above a bare start",
        changed.name: f"{max(0.0, changed.cpu - idle.cpu) / changed_loads:.1f}× of the changed records above idle",
    }
    for r in (bare, first, idle, changed):
        print(f"{r.name:<14} {r.requests:>8,} {r.wall:>8.2f} {r.cpu:>8.2f} {r.rss_mb:>11.0f}  {ratio[r.name]}")
    marginal = (changed.cpu - idle.cpu) / max(1, n) * 1000
    print(
        f"\nmarginal CPU per changed record: {marginal:.2f} ms "
        f"(json.loads of one: {changed_loads / max(1, n) * 1000:.3f} ms)"
    )
    print(f"database after the first sync: {result['first_bytes'] / args.trials:,.0f} bytes per study")
    print(f"\nother commands, 5 runs each (CPU s of the process; the {args.trials:,}-entry watchlist is read by both)")
    for name, runs in result["commands"].items():
        cpus = sorted(r.cpu for r in runs)
        print(f"  {name:<8} CPU min {cpus[0]:.2f}  median {cpus[len(cpus) // 2]:.2f}  peak RSS {runs[0].rss_mb:.0f} MB")
    hours = first.cpu * REGISTRY / args.trials / 3600
    print(f"first sync CPU extrapolated linearly to {REGISTRY:,} studies: {hours:.2f} h (an extrapolation)")


def start_fake(port: int, studies: int, mix: str, *, lazy: bool = False) -> subprocess.Popen[str]:
    """The fake registry as its own process, serving `studies` synthetic studies in size mix `mix`
    (`lazy`: generated on demand), returned once it listens (its first line)."""
    fake = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.support.fakeapi", "--port", str(port)),
            *("--synthetic", str(studies), "--mix", mix, *(("--lazy",) if lazy else ())),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert fake.stdout is not None
    fake.stdout.readline()
    return fake


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_cycle", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=1_000, help="studies changed before the last cycle")
    parser.add_argument("--mix", choices=["registry", "small", "fixtures"], default="registry")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--mode", choices=["watchlist", "registry"], default="watchlist")
    parser.add_argument("--profile", metavar="DIR", help="also profile each cycle into DIR/<cycle>.prof and .txt")
    args = parser.parse_args(argv)
    from tests.support import shared

    try:
        shared.study_paths()
    except shared.FixturesNotFound as exc:
        raise SystemExit(f"bench_cycle: {exc}") from None
    port = free_port()
    fake = start_fake(port, args.trials, args.mix)
    cleanup: Any = None
    try:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            if args.db == "postgresql":
                db_url, cleanup = postgres_url()
            else:
                db_url = f"sqlite:///{tmp}/bench.sqlite"
            bench = Bench(args, tmp, port, db_url)
            try:
                result = bench.run()
            finally:
                bench.control.close()
    finally:
        fake.terminate()
        fake.communicate(timeout=10)
        if cleanup is not None:
            cleanup.close()
    all_loads = loads_seconds(served_bodies(args.trials, args.mix, None, None))
    changed_loads = loads_seconds(served_bodies(args.trials, args.mix, set(result["picks"]), "COMPLETED"))
    report(args, result, all_loads, changed_loads)


if __name__ == "__main__":
    main()
