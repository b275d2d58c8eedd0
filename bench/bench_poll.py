"""Benchmark: TrialWatch's poll against a naive one-request-per-trial poll, 10,000 watched trials.

    python -m bench.bench_poll [--watched 10000] [--churn 3000] [--trialwatch-only]

The fake API runs as a separate process holding `watched + churn` studies derived from the real
fixtures under new NCT IDs (NCT90000001, ...). The first `watched` are the watchlist; the others
stand for the rest of the registry, `churn` of which are updated in every daily refresh (the real
registry updates a few thousand studies a day). Cycles, in order:

  initial sync          nothing stored yet
  unchanged             same dataTimestamp as the last poll
  refresh, 0% changed   a new refresh: `churn` other studies updated, no watched one
  refresh, 1% changed   a new refresh: 1% of the watched and `churn` - 1% others updated
  ... filter.ids probe  the same again, with the registry-wide query unavailable (no last success)

Each (poll, cycle) runs in its own process so peak RSS is its own; both use requests_per_second=0.
Requests are counted by the fake's log, wall time around the poll only; "at 0.8 req/s" is the least
a cycle would take against the real API at the default `api.requests_per_second`.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.support import shared  # noqa: E402
from watcher.config.settings import ApiSettings  # noqa: E402

FIRST = 90_000_001
DEFAULT_RATE = 0.8  # api.requests_per_second's default, requests per second


def nct(i: int) -> str:
    return f"NCT{FIRST + i:08d}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def last_update(record: dict[str, Any]) -> str:
    date: str = record["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
    return date


# workers: one poll of one cycle, state in a JSON file ---------------------------------------


def run_trialwatch(base_url: str, watched: list[str], state_file: Path, *, probe: bool) -> dict[str, Any]:
    from watcher.config import ApiSettings
    from watcher.registry.client import CtGovClient
    from watcher.registry.poll import PollState, poll

    saved = json.loads(state_file.read_text()) if state_file.exists() else {}

    def when(key: str) -> datetime | None:
        return datetime.fromisoformat(saved[key]) if saved.get(key) else None

    state = PollState(
        data_timestamp=saved.get("data_timestamp"),
        last_success=None if probe else when("last_success"),
        last_full_refetch=when("last_full_refetch"),
        known=saved.get("known", {}),
    )
    dates: dict[str, str] = {}
    now = datetime.now(UTC)
    with CtGovClient(ApiSettings(base_url=base_url, requests_per_second=0)) as client:
        started = time.perf_counter()
        result = poll(
            client, watched, state, now=now, sink=lambda nct_id, record: dates.__setitem__(nct_id, last_update(record))
        )
        wall = time.perf_counter() - started
    changed = sum(1 for k, v in dates.items() if state.known.get(k) != v)
    saved = {
        "data_timestamp": result.data_timestamp,
        "last_success": now.isoformat() if result.complete else saved.get("last_success"),
        "last_full_refetch": now.isoformat() if result.full_refetch else saved.get("last_full_refetch"),
        "known": {**state.known, **dates},
    }
    state_file.write_text(json.dumps(saved))
    return {
        "requests": result.requests,
        "wall": wall,
        "rss": peak_rss_mb(),
        "changed": changed,
        "fetched": len(dates),
        "strategy": result.strategy,
        "failures": len(result.failures),
    }


def run_naive(base_url: str, watched: list[str], state_file: Path) -> dict[str, Any]:
    """What a general-purpose watcher does: GET every watched record, compare it with the last one."""
    known: dict[str, str] = json.loads(state_file.read_text()) if state_file.exists() else {}
    changed = requests = 0
    started = time.perf_counter()
    with httpx.Client(timeout=30, headers={"User-Agent": "naive-bench"}) as http:
        for nct_id in watched:
            record = http.get(f"{base_url}/studies/{nct_id}").json()
            requests += 1
            date = last_update(record)
            if known.get(nct_id) != date:
                changed += 1
                known[nct_id] = date
    wall = time.perf_counter() - started
    state_file.write_text(json.dumps(known))
    return {
        "requests": requests,
        "wall": wall,
        "rss": peak_rss_mb(),
        "changed": changed,
        "fetched": requests,
        "strategy": "per-trial GET",
        "failures": 0,
    }


def worker(args: argparse.Namespace) -> None:
    watched = [nct(i) for i in range(args.watched)]
    state_file = Path(args.state)
    if args.worker == "trialwatch":
        out = run_trialwatch(args.base_url, watched, state_file, probe=args.probe)
    else:
        out = run_naive(args.base_url, watched, state_file)
    print(json.dumps(out))


# the orchestrator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    name: str
    watched_changed: int  # how many watched studies the refresh updates (0 = none)
    refresh: bool  # a new data refresh, with `churn` other studies updated
    probe: bool = False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def url_lengths() -> list[tuple[int, int]]:
    """URL length of a filter.ids probe as the poll sends it (8-digit IDs, `,` unescaped)."""
    rows = []
    for size in (100, 200, 300, 400, 480, 500, 600):
        ids = ",".join(f"NCT{99_999_999 - i:08d}" for i in range(size))
        query = urlencode(
            {"filter.ids": ids, "pageSize": "1000", "fields": "NCTId,NCTIdAlias,LastUpdatePostDate,OverallStatus"},
            safe=",",
        )
        rows.append((size, len(f"https://clinicaltrials.gov/api/v2/studies?{query}")))
    return rows


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"≥{seconds:.0f} s"
    if seconds < 7200:
        return f"≥{seconds / 60:.0f} min"
    return f"≥{seconds / 3600:.1f} h"


def cycles(watched: int) -> list[Cycle]:
    one_percent = max(1, watched // 100)
    return [
        Cycle("initial sync", 0, refresh=False),
        Cycle("unchanged", 0, refresh=False),
        Cycle("refresh, 0% changed", 0, refresh=True),
        Cycle("refresh, 1% changed", one_percent, refresh=True),
        Cycle("refresh, 1% changed, filter.ids probe", one_percent, refresh=True, probe=True),
    ]


def refresh(control: httpx.Client, cycle: Cycle, number: int, args: argparse.Namespace) -> None:
    """The registry's daily refresh on the fake: `cycle.watched_changed` watched studies (a different
    spread each `number`) and the rest of `churn` among the others get a new last-update date."""
    picks = ((number * 7 + i * 97) % args.watched for i in range(cycle.watched_changed))
    watched_ids = list(dict.fromkeys(map(nct, picks)))
    others = [nct(args.watched + i) for i in range(args.churn - len(watched_ids))]
    control.post("/_fake/touch", json={"ids": watched_ids + others}).raise_for_status()


def poll_once(
    control: httpx.Client, impl: str, cycle: Cycle, *, base_url: str, state: str, args: argparse.Namespace
) -> dict[str, Any]:
    """One poll by `impl` in a process of its own; its request count checked against the fake's log."""
    control.post("/_fake/requests", json={"reset": True}).raise_for_status()
    cmd = [sys.executable, __file__, "--worker", impl, "--base-url", base_url, "--watched", str(args.watched)]
    cmd += ["--state", state, *(["--probe"] if cycle.probe and impl == "trialwatch" else [])]
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    served = control.post("/_fake/requests", json={}).json()["count"]
    assert served == result["requests"], (impl, cycle.name, served, result["requests"])
    print(
        f"  {cycle.name:<40} {impl:<10} {result['requests']:>6} requests "
        f"{result['wall']:>7.2f} s  {result['rss']:>6.0f} MB  changed {result['changed']}",
        file=sys.stderr,
        flush=True,
    )
    return result


def measure(args: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    """Every cycle, polled by each implementation in turn, against one fake API process."""
    port = free_port()
    total = args.watched + args.churn
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fakeapi", "--port", str(port), "--synthetic", str(total)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}/api/v2"
    impls = ("trialwatch",) if args.trialwatch_only else ("trialwatch", "naive")
    rows: list[tuple[str, str, dict[str, Any]]] = []
    try:
        assert fake.stdout is not None
        print(fake.stdout.readline().strip(), file=sys.stderr, flush=True)
        control = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        with tempfile.TemporaryDirectory() as tmp, control:
            refreshes = 0
            for cycle in cycles(args.watched):
                if cycle.refresh:
                    refresh(control, cycle, refreshes, args)
                    refreshes += 1
                for impl in impls:
                    state = f"{tmp}/{impl}.json"
                    result = poll_once(control, impl, cycle, base_url=base_url, state=state, args=args)
                    rows.append((cycle.name, impl, result))
    finally:
        fake.terminate()
        fake.communicate(timeout=10)
    return rows


def report(args: argparse.Namespace, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
    print(
        f"\nwatched {args.watched:,} trials; registry {args.watched + args.churn:,} studies, "
        f"{args.churn:,} updated per refresh; requests_per_second=0 for both"
    )
    print(
        f"\n{'cycle':<40} {'poll':<11} {'strategy':<14} {'requests':>8} {'wall s':>8} "
        f"{'at 0.8 req/s':>12} {'peak RSS MB':>11} {'changed':>8}"
    )
    for name, impl, r in rows:
        paced = _duration(max(0, r["requests"] - 1) / DEFAULT_RATE + r["wall"])
        print(
            f"{name:<40} {impl:<11} {r['strategy']:<14} {r['requests']:>8,} {r['wall']:>8.2f} "
            f"{paced:>12} {r['rss']:>11.0f} {r['changed']:>8,}"
        )
    print("\nfilter.ids batch size vs URL length (8-digit IDs, as the poll sends them):")
    for size, length in url_lengths():
        mark = "  (default batch_size)" if size == ApiSettings().batch_size else ""
        print(f"  {size:>4} IDs → {length:>5} bytes{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watched", type=int, default=10_000)
    parser.add_argument("--churn", type=int, default=3_000, help="other studies updated per refresh")
    parser.add_argument("--trialwatch-only", action="store_true", help="skip the naive poll (it is slow)")
    parser.add_argument("--worker", choices=["trialwatch", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    try:
        shared.study_paths()  # the fake derives its studies from them; say so here, not in the child
    except shared.FixturesNotFound as exc:
        raise SystemExit(f"bench_poll: {exc}") from None
    report(args, measure(args))


if __name__ == "__main__":
    main()
