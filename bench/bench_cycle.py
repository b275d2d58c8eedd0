"""Benchmark: whole cycles (poll + store + diff + outbox) against the fake API, first sync and 10% changed.

    python -m bench.bench_cycle --trials 10000 [--db sqlite|postgresql] [--changed 0.1] [--mode watchlist|registry]
                                [--profile first.prof]

The fake API runs as a separate process holding `trials` studies derived from the real records
(`tests/support/fakeapi.py --synthetic`, no rate limit). Each cycle runs `watcher.cycle.Cycle.run` in its own
process, so its peak RSS (`ru_maxrss`) is the cycle's own, imports included; a webhook channel is
configured (never delivered to) so changes become outbox rows. Cycles, in order:

  first sync     nothing stored: every record fetched, stored and made a baseline
  N% changed     a new refresh in which `changed` of the studies have a new status (a notified change)

Printed per cycle: requests (the client's count, checked against the fake's log), wall time, CPU time
of the cycle process (on PostgreSQL the server's own is not in it), both as a multiple of `json.loads`
of the same records (timed in this run, in this process, one record at a time from the bytes the fake
serves: all records for the first sync, the changed ones for the second), peak RSS, database bytes
per trial, and the first sync's CPU time extrapolated linearly to 560,000 studies. `--mode registry`
watches the whole (fake) registry (`registry: {all: true}`) instead of listing the trials.
`--profile FILE` runs each cycle under cProfile (slower) and writes its statistics to FILE.first and
FILE.changed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REGISTRY = 560_000
FIRST = 90_000_001


def nct(i: int) -> str:
    return f"NCT{FIRST + i:08d}"


# the worker: one cycle in its own process ------------------------------------------------------


def _config(base_url: str, db_url: str, trials: int, mode: str) -> Any:
    from dataclasses import replace

    from watcher.config import ApiSettings, ChannelSettings, Config, Watchlist
    from watcher.config.settings import collect_settings
    from watcher.models import Trial

    settings, _ = collect_settings(None, {})
    channel = ChannelSettings(name="bench", url="json://127.0.0.1:9/bench")
    settings = replace(
        settings,
        api=ApiSettings(base_url=base_url, requests_per_second=0),
        storage_url=db_url,
        channels={"bench": channel},
    )
    if mode == "registry":
        from watcher.config.registry import RegistrySettings
        from watcher.detect.studies import STATUSES, StudyFilter

        # every study matches the channel's filter, so every change after the first sync is routed
        channel = replace(channel, studies=StudyFilter(statuses=STATUSES))
        settings = replace(settings, registry=RegistrySettings(all=True), channels={"bench": channel})
        watched: tuple[Trial, ...] = ()
    else:
        watched = tuple(Trial(nct_id=nct(i)) for i in range(trials))
    return Config(settings=settings, watchlist=Watchlist(path=Path("bench-watchlist.yaml"), trials=watched))


def worker(args: argparse.Namespace) -> None:
    from watcher.cycle import Cycle
    from watcher.registry.client import CtGovClient
    from watcher.service.logs import configure
    from watcher.store import Store

    configure("warning", "console")
    config = _config(args.base_url, args.db_url, args.trials, args.mode)
    with Store(config.settings.storage_url) as store:
        before = resource.getrusage(resource.RUSAGE_SELF)
        rss_before = before.ru_maxrss / 1024
        with CtGovClient(config.settings.api) as client:
            cycle = Cycle(config, store, client, write=lambda _: None)
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            started = time.perf_counter()
            report = cycle.run(deliver=False)
            wall = time.perf_counter() - started
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        json.dumps(
            {
                "requests": report.requests,
                "wall": wall,
                "cpu": cpu,
                "rss": after.ru_maxrss / 1024,
                "rss_before": rss_before,
                "result": report.result,
                "strategy": report.strategy,
                "changed": len(report.changed),
                "failed": len(report.failed),
                "checked": report.checked,
            }
        )
    )


# the orchestrator ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def loads_seconds(trials: int, pick: list[int] | None = None, *, status: str | None = None) -> float:
    """`json.loads` of the records the fake serves (the same serialisation), one at a time."""
    from tests.support.fakeapi import synthetic_studies

    wanted = None if pick is None else set(pick)
    total = 0.0
    for index, served in enumerate(synthetic_studies(trials)):
        if wanted is not None and index not in wanted:
            continue
        study = served
        if status is not None:
            protocol = served["protocolSection"]
            study = dict(
                served,
                protocolSection=dict(protocol, statusModule=dict(protocol["statusModule"], overallStatus=status)),
            )
        body = json.dumps(study, ensure_ascii=False).encode()
        started = time.perf_counter()
        json.loads(body)
        total += time.perf_counter() - started
    return total


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


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import httpx

    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fakeapi", "--port", str(port), "--synthetic", str(args.trials)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    rows: list[dict[str, Any]] = []
    cleanup: Any = None
    try:
        assert fake.stdout is not None
        fake.stdout.readline()
        with tempfile.TemporaryDirectory() as tmp, httpx.Client(base_url=f"http://127.0.0.1:{port}") as control:
            if args.db == "postgresql":
                db_url, cleanup = postgres_url()
            else:
                db_url = f"sqlite:///{tmp}/bench.sqlite"
            from watcher.store import Store

            Store(db_url).close()  # the schema, so bytes per trial count only what the cycles store
            empty = db_bytes(db_url)
            count = max(1, round(args.trials * args.changed)) if args.changed > 0 else 0
            picks = sorted({(i * 7919) % args.trials for i in range(count)})
            for name in ("first sync", f"{args.changed:.0%} changed"):
                if name != "first sync":
                    for i in picks:
                        control.post(
                            "/_fake/update",
                            json={"id": nct(i), "set": {"protocolSection.statusModule.overallStatus": "COMPLETED"}},
                        ).raise_for_status()
                control.post("/_fake/requests", json={"reset": True}).raise_for_status()
                cmd = [
                    sys.executable,
                    "-m",
                    "bench.bench_cycle",
                    "--worker",
                    "--base-url",
                    f"http://127.0.0.1:{port}/api/v2",
                    "--db-url",
                    db_url,
                    "--trials",
                    str(args.trials),
                    "--mode",
                    args.mode,
                ]
                if args.profile:
                    cmd += ["--profile", f"{args.profile}.{'first' if name == 'first sync' else 'changed'}"]
                out = subprocess.run(
                    cmd,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=False,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                )
                if out.returncode != 0:
                    raise SystemExit(f"bench_cycle: the {name} cycle failed:\n{out.stderr[-3000:]}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                served = control.post("/_fake/requests", json={}).json()["count"]
                assert served == result["requests"], (name, served, result["requests"])
                first = name == "first sync"
                result["name"] = name
                result["records"] = args.trials if first else len(picks)
                result["loads"] = (
                    loads_seconds(args.trials) if first else loads_seconds(args.trials, picks, status="COMPLETED")
                )
                result["bytes"] = db_bytes(db_url) - (empty if first else rows[-1]["bytes_total"])
                result["bytes_total"] = db_bytes(db_url)
                rows.append(result)
                print(
                    f"  {name:<14} {result['requests']:>5} requests {result['wall']:>8.2f} s  "
                    f"{result['rss']:>6.0f} MB  {result['result']}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        fake.terminate()
        fake.communicate(timeout=10)
        if cleanup is not None:
            cleanup.close()
    return rows


def report(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print(
        f"\n{args.trials:,} synthetic studies from the real records; database {args.db}; mode {args.mode}; "
        f"fake API without rate limit; python {sys.version.split()[0]}"
    )
    print(
        f"\n{'cycle':<14} {'requests':>8} {'wall s':>8} {'CPU s':>8} {'loads s':>8} {'wall/loads':>10} "
        f"{'CPU/loads':>9} {'peak RSS MB':>11} {'bytes/trial':>11} {'result':>8}"
    )
    for r in rows:
        per_trial = r["bytes"] / max(1, r["records"] if r["name"] != "first sync" else args.trials)
        print(
            f"{r['name']:<14} {r['requests']:>8,} {r['wall']:>8.2f} {r['cpu']:>8.2f} {r['loads']:>8.3f} "
            f"{r['wall'] / r['loads']:>9.1f}× {r['cpu'] / r['loads']:>8.1f}× {r['rss']:>11.0f} "
            f"{per_trial:>11,.0f} {r['result']:>8}"
        )
    first = rows[0]
    print(f"\npeak RSS before the cycle (interpreter, imports, store): {first['rss_before']:.0f} MB")
    print(
        "bytes/trial: database growth over the cycle per record stored (first sync: per study; "
        "later: per changed study)"
    )
    cpu_hours = first["cpu"] * REGISTRY / args.trials / 3600
    wall_hours = first["wall"] * REGISTRY / args.trials / 3600
    disk = first["bytes"] * REGISTRY / args.trials / 1e9
    print(
        f"extrapolated to {REGISTRY:,} studies (linear in studies, from the first sync): "
        f"CPU {cpu_hours:.2f} h, wall {wall_hours:.2f} h, database {disk:.1f} GB, "
        f"requests ≥ {1 + -(-REGISTRY // 1000):,} (1,000 records a page)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_cycle", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--changed", type=float, default=0.1, help="share of studies changed in the second cycle")
    parser.add_argument("--mode", choices=["watchlist", "registry"], default="watchlist")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile each cycle into FILE.first and FILE.changed (read with `python -m pstats`)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    from tests.support import shared

    try:
        shared.study_paths()
    except shared.FixturesNotFound as exc:
        raise SystemExit(f"bench_cycle: {exc}") from None
    report(args, run(args))


if __name__ == "__main__":
    main()
