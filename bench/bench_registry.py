"""Benchmark: the whole registry end to end, `registry: {all: true}`, as a user runs it (the CLI `check`).

    python -m bench.bench_registry [--studies 560000] [--day 0.01] [--db sqlite|postgresql] [--mix registry]

Run once, outside CI (the full size takes the better part of an hour). The fake API makes its
`studies` synthetic studies only when asked for (`tests/support/synthetic.py` LazyStudies, in the size
mix `--mix`), so it holds a registry of 560,000 in a few megabytes. Runs, each the CLI in its own process:

  first sync   every study listed, 1,000 full records a request, stored and made a baseline
  1% day       `day` of the studies have a new overall status (a day of the registry's churn is a few
               thousand studies): the updated-since query brings them, and they are diffed and routed

Printed per run: requests (counted by the fake), wall, CPU (user + system of the CLI process; the fake's
and PostgreSQL's own are not in it), peak RSS of the CLI process, and the database's size after it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_cycle import (  # noqa: E402 - after the path is set
    Run,
    _wait4_run,
    db_bytes,
    free_port,
    nct,
    postgres_url,
    start_fake,
    write_config,
)


def change_day(control: Any, studies: int, share: float) -> int:
    """A day's edits: `share` of the studies, spread over the registry, get a new overall status."""
    count = max(1, round(studies * share))
    step = max(1, studies // count)
    for i in range(0, step * count, step):
        control.post(
            "/_fake/update",
            json={"id": nct(i), "set": {"protocolSection.statusModule.overallStatus": "COMPLETED"}},
        ).raise_for_status()
    return count


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far, from /proc (the fake's, beside ours)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace, tmp: Path, port: int, db_url: str, fake_pid: int) -> list[tuple[Run, int, str]]:
    import httpx

    config = write_config(tmp, f"http://127.0.0.1:{port}/api/v2", db_url, 0, "registry")
    cmd = [sys.executable, "-m", "watcher", "--log-level", "warning", "--config", str(config), "check"]
    rows: list[tuple[Run, int, str]] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as control:
        _wait4_run("warm-up", [sys.executable, "-m", "watcher", "--help"], tmp)
        for name in ("first sync", f"{args.day:.0%} day"):
            note = ""
            if name != "first sync":
                started = time.perf_counter()
                changed = change_day(control, args.studies, args.day)
                note = f"{changed:,} studies changed (by the fake in {time.perf_counter() - started:.0f} s)"
            control.post("/_fake/requests", json={"reset": True}).raise_for_status()
            fake_before = process_cpu(fake_pid)
            result = _wait4_run(name, cmd, tmp)
            note += f"{'; ' if note else ''}fake API {process_cpu(fake_pid) - fake_before:.0f} s CPU"
            note += "; load average {:.1f} {:.1f} {:.1f} at the end".format(*os.getloadavg())
            result.requests = control.post("/_fake/requests", json={}).json()["count"]
            size = db_bytes(db_url)
            rows.append((result, size, note))
            print(
                f"  {name:<12} {result.requests:>6,} requests {result.wall:>8.0f} s wall {result.cpu:>8.0f} s CPU "
                f"{result.rss_mb:>6.0f} MB {size / 1e9:>6.2f} GB {note}",
                file=sys.stderr,
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_registry", description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=560_000)
    parser.add_argument("--day", type=float, default=0.01, help="share of the studies changed for the second run")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--mix", choices=["registry", "small", "fixtures"], default="registry")
    args = parser.parse_args(argv)
    port = free_port()
    fake = start_fake(port, args.studies, args.mix, lazy=True)
    cleanup: Any = None
    try:
        with tempfile.TemporaryDirectory() as name:
            if args.db == "postgresql":
                db_url, cleanup = postgres_url()
            else:
                db_url = f"sqlite:///{name}/bench.sqlite"
            rows = run(args, Path(name), port, db_url, fake.pid)
    finally:
        fake.terminate()
        fake.communicate(timeout=30)
        if cleanup is not None:
            cleanup.close()
    print(
        f"\n{args.studies:,} synthetic studies (size mix {args.mix}, made on demand by the fake); "
        f"database {args.db}; CLI `check` with registry: {{all: true}}; python {sys.version.split()[0]}"
    )
    print(f"\n{'run':<12} {'requests':>8} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>11} {'database GB':>11}")
    for result, size, note in rows:
        print(
            f"{result.name:<12} {result.requests:>8,} {result.wall:>8.0f} {result.cpu:>8.0f} "
            f"{result.rss_mb:>11.0f} {size / 1e9:>11.2f}  {note}"
        )


if __name__ == "__main__":
    main()
