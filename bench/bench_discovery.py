"""Requests of a poll cycle with saved searches: 5 searches over 10,000 watched trials.

    /work/venv/bin/python bench/bench_discovery.py [--watched 10000] [--searches 5]

The fake API (in a thread of this process) holds `watched` studies derived from the real fixtures
under new NCT IDs plus the 17 real ones; the watchlist lists the derived ones and has `searches`
saved searches. Each cycle is a whole `Cycle.run` (registry → store → detect → outbox) on a fresh
SQLite file, with requests_per_second=0; requests are counted by the fake's own log, by kind:

  initial            nothing stored: every search runs whole (its baseline), every trial is synced
  no refresh         the registry's data timestamp has not moved
  refresh            a new refresh: 1% of the watched trials updated, 3 new studies posted (2 match)

This script prints counts, not speeds: no timing is claimed from it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.discovery_studies import post_three  # noqa: E402
from tests.support.fakeapi import FakeCtGov, load_fixtures, synthetic_studies  # noqa: E402

SEARCHES = [
    "  - name: t1d-cell-therapy\n    query: {cond: type 1 diabetes, intr: CAR-T}\n"
    "    filter: {overallStatus: [RECRUITING, NOT_YET_RECRUITING]}\n    watch: true",
    "  - name: nsclc-boston\n    query: {cond: non-small cell lung}\n    filter: {overallStatus: RECRUITING}\n"
    "    near: {lat: 42.36, lon: -71.06, km: 50}",
    "  - name: lymphoma\n    query: {cond: lymphoma}",
    "  - name: covid-completed\n    query: {cond: covid-19}\n    filter: {overallStatus: COMPLETED}",
    "  - name: nemtabrutinib\n    query: {intr: nemtabrutinib}\n    since: matching",
]


def kind(params: dict[str, str]) -> str:
    if any(k.startswith("query.") for k in params):
        return "search"
    if "filter.ids" in params:
        return "poll: filter.ids batch"
    if "filter.advanced" in params:
        return "poll: updated-since query"
    return "poll: other /studies"


def count(fake: FakeCtGov) -> Counter[str]:
    tally: Counter[str] = Counter()
    for _method, path, params in fake.requests:
        if path.endswith("/version"):
            tally["/version"] += 1
        elif path.endswith("/studies"):
            tally[kind(params)] += 1
        elif "/studies/" in path:
            tally["poll: single study"] += 1
        else:
            tally[path] += 1
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watched", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=5, choices=range(1, len(SEARCHES) + 1))
    args = parser.parse_args()

    from watcher.config import load_config
    from watcher.cycle import Cycle
    from watcher.registry.client import CtGovClient
    from watcher.service.logs import configure
    from watcher.store import Store

    configure("warning", "json")  # the cycle's per-trial events would bury the figures
    studies = list(synthetic_studies(args.watched))
    watched = [s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
    with FakeCtGov([*studies, *load_fixtures()]) as fake, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "trialwatch.yaml").write_text(
            f"watchlist: watchlist.yaml\nstate_dir: state\napi:\n  base_url: {fake.base_url}\n"
            "  requests_per_second: 0\n"
        )
        (root / "watchlist.yaml").write_text(
            "trials:\n"
            + "".join(f"  - {n}\n" for n in watched)
            + "searches:\n"
            + "\n".join(SEARCHES[: args.searches])
            + "\n"
        )
        config = load_config(root / "trialwatch.yaml")
        with Store(config.settings.storage_url) as store:
            out: list[str] = []
            rows: list[tuple[str, Counter[str], Any]] = []
            with CtGovClient(config.settings.api) as client:

                def cycle(name: str) -> None:
                    fake.reset_requests()
                    report = Cycle(config, store, client, write=out.append).run(deliver=False)
                    rows.append((name, count(fake), report))

                cycle("initial")
                cycle("no refresh")
                fake.touch(watched[::100])  # 1% of the watched trials updated in a new refresh
                post_three(fake)
                cycle("refresh")

    print(
        f"{args.watched:,} watched trials, {args.searches} saved searches "
        f"({len(fake.ids()):,} studies in the fake registry)\n"
    )
    kinds = sorted({k for _, tally, _ in rows for k in tally})
    print(f"{'cycle':<12} {'requests':>8}  " + "  ".join(f"{k}" for k in kinds))
    for name, tally, report in rows:
        print(
            f"{name:<12} {sum(tally.values()):>8}  "
            + "  ".join(f"{tally.get(k, 0):>{len(k)}}" for k in kinds)
            + f"   (report.requests={report.requests}, strategy={report.strategy})"
        )
    print("\nannounced (no channels: printed):")
    for line in out:
        if line.startswith("== New trial"):
            print("  " + line.splitlines()[0][3:])


if __name__ == "__main__":
    main()
