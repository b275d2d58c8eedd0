"""What the web view and the static site cost at size: server time of the list and a trial page at
10,000 trials, a trial of 100 versions, and `site build` of every trial, full and after 100 changed.

The trials are copies of the real corpus records (../shared/fixtures/ctgov/pairs through
tests.support), each under its own NCT ID; one trial gets 100 versions, its enrollment and dates
moving each time. Pages are timed in-process through the ASGI application (Starlette's test client:
routing, queries, templates; no network), median of several runs after a warm-up.

    python -m bench.bench_web                    # 10,000 trials, SQLite in a temporary folder
    python -m bench.bench_web --trials 500 --changed 10
    python -m bench.bench_web --trials 500000 --real 2000 --pages-only --keep /tmp/tw500k
    python -m bench.bench_web --trials 100000 --real 2000 --site-only --jobs 2
    python -m bench.bench_web --trials 500000 --real 2000 --pages-only --db postgresql --keep /tmp/tw500k

Past `--real` trials (stored version by version), the rest are SQL copies of them
(`bench.web_seed`): 500,000 trials are seeded in minutes. `--keep DIR` keeps the store for the
next run. `--db postgresql` copies that SQLite store into a fresh PostgreSQL database
(`bench.web_pg`, dropped afterwards) and times the pages and builds there.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.web_seed import clone  # noqa: E402
from tests.support.web_store import renamed, settings_file, trial_versions  # noqa: E402
from watcher.config import load_config  # noqa: E402
from watcher.detect import SeverityRules, changes_between  # noqa: E402
from watcher.detect.record import content_hash  # noqa: E402
from watcher.service.logs import configure  # noqa: E402
from watcher.store import Store  # noqa: E402
from watcher.store.values import NewVersion  # noqa: E402
from watcher.views.site import build_site  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
TARGET_MS = 150.0
TARGET_RATIO = 0.05
BUSY = "NCT20000000"


def nct(index: int) -> str:
    return f"NCT1{index:07d}"


def populate(store: Store, trials: int) -> list[str]:
    """`trials` copies of the corpus's newest records, two versions each where the corpus has two."""
    corpus = [records for _, records in trial_versions()]
    rules = SeverityRules.from_mapping({})
    ids, batch = [], []
    for index in range(trials):
        records = corpus[index % len(corpus)]
        nct_id = nct(index)
        ids.append(nct_id)
        first, last = renamed(records[0], nct_id), renamed(records[-1], nct_id)
        when = NOW - timedelta(days=1 + index % 60)
        batch.append(NewVersion(nct_id, first, content_hash(first), when - timedelta(days=30), baseline=True))
        if content_hash(first) != content_hash(last):
            changes = tuple(changes_between(first, last, rules))
            batch.append(NewVersion(nct_id, last, content_hash(last), when, changes=changes, detected_at=when))
        if len(batch) >= 500:
            store.versions.save_many(batch)
            batch = []
    if batch:
        store.versions.save_many(batch)
    return ids


def hundred_versions(store: Store, count: int = 100) -> None:
    """One trial whose enrollment and primary completion date move with every version."""
    base = renamed(next(trial_versions())[1][-1], BUSY)
    rules = SeverityRules.from_mapping({})
    previous: dict[str, Any] | None = None
    for version in range(count):
        record = copy.deepcopy(base)
        status = record["protocolSection"].setdefault("statusModule", {})
        status["primaryCompletionDateStruct"] = {"date": f"{2026 + version // 12}-{version % 12 + 1:02d}"}
        design = record["protocolSection"].setdefault("designModule", {})
        design["enrollmentInfo"] = {"count": 100 + 3 * version, "type": "ESTIMATED"}
        when = NOW - timedelta(days=count - version)
        changes = tuple(changes_between(previous, record, rules)) if previous else ()
        item = NewVersion(BUSY, record, content_hash(record), when, changes=changes, baseline=previous is None)
        store.versions.save_many([item])
        previous = record


def median_ms(action: Callable[[], Any], runs: int) -> float:
    action()  # warm-up: templates compiled, caches filled
    spent = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        spent.append(1000 * (time.perf_counter() - started))
    return statistics.median(spent)


def changed_versions(store: Store, ids: list[str], count: int) -> None:
    """A new version of `count` trials: their title reworded."""
    items = []
    for nct_id in ids[:count]:
        latest = store.versions.latest(nct_id)
        assert latest is not None
        record = copy.deepcopy(dict(latest.record))
        record["protocolSection"]["identificationModule"]["briefTitle"] += " (amended)"
        items.append(NewVersion(nct_id, record, content_hash(record), NOW, detected_at=NOW))
    store.versions.save_many(items)


def page_figures(settings: Path, ids: list[str], runs: int) -> list[tuple[str, float]]:
    from watcher.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's test client asks for httpx2; httpx is what we ship with
        from starlette.testclient import TestClient

    def get(client: TestClient, path: str) -> Callable[[], None]:
        def fetch() -> None:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)

        return fetch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TestClient(create_app(load_config(settings))) as client:
            deep = max(1, len(ids) // 100)  # halfway down the list (50 trials a page)
            paths = [
                ("list, first page", "/"),
                ("list, page 100", "/?page=100"),
                (f"list, page {deep:,}", f"/?page={deep}"),
                ("list, tag filter", "/?tag=oncology"),
                ("list, status filter", "/?status=COMPLETED"),
                ("list, source registry", "/?source=registry"),
                ("list, search 'cancer'", "/?q=cancer"),
                ("list, search an NCT ID", f"/?q={ids[len(ids) // 3]}"),
                ("list, sort by next date", "/?sort=date"),
                ("list, sort by date, 30 days", "/?sort=date&days=30"),
                ("dates, first page", "/dates"),
                ("dates, page 20", "/dates?page=20"),
                ("trial page", f"/trials/{ids[len(ids) // 2]}"),
                ("trial of 100 versions", f"/trials/{BUSY}"),
                ("compare v1 → v100", f"/trials/{BUSY}/compare?a=1&b=100"),
                ("API list", "/api/trials"),
            ]
            return [(name, median_ms(get(client, path), runs)) for name, path in paths]


def seed_store(path: Path, trials: int, real: int) -> None:
    """`real` trials stored version by version, SQL copies of them up to `trials`, the trial of 100 versions."""
    started = time.perf_counter()
    with Store(f"sqlite:///{path}") as store:
        ids = populate(store, min(trials, real))
        hundred_versions(store)
    if trials > len(ids):
        more = [nct(i) for i in range(len(ids), trials)]
        clone(str(path), ids, more, progress=lambda n: print(f"  copied {n:,} trials", flush=True))
    print(f"seeded {trials:,} trials + 1 of 100 versions in {time.perf_counter() - started:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument(
        "--real", type=int, default=10_000, help="trials stored version by version; the rest are SQL copies of them"
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs per page (the median is shown)")
    parser.add_argument("--pages-only", action="store_true", help="time the pages, not the site builds")
    parser.add_argument("--site-only", action="store_true", help="time the site builds, not the pages")
    parser.add_argument("--jobs", type=int, default=1, help="processes of the full site build")
    parser.add_argument("--keep", type=Path, help="seed into this folder, or reuse the store already seeded there")
    parser.add_argument(
        "--db", choices=["sqlite", "postgresql"], default="sqlite", help="the database the pages are read from"
    )
    args = parser.parse_args(argv)
    configure("warning", "console")
    with tempfile.TemporaryDirectory() as folder:
        root = args.keep or Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{root / 'bench.sqlite'}"
        ids = [nct(i) for i in range(args.trials)]
        if (root / "bench.sqlite").exists():
            print(f"reusing the store in {root}")
        else:
            seed_store(root / "bench.sqlite", args.trials, args.real)
        if args.db == "postgresql":
            with postgres_copy(url) as pg_url:
                figures(args, root, pg_url, ids)
        else:
            figures(args, root, url, ids)


@contextmanager
def postgres_copy(sqlite_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database holding the SQLite store's rows; dropped afterwards."""
    from bench.web_pg import copy_to_postgres
    from tests.support.databases import postgres_database

    databases = postgres_database()
    pg_url = next(databases)
    try:
        started = time.perf_counter()
        copy_to_postgres(sqlite_url, pg_url)
        print(f"copied into PostgreSQL in {time.perf_counter() - started:.1f} s")
        yield pg_url
    finally:
        databases.close()


def figures(args: argparse.Namespace, root: Path, url: str, ids: list[str]) -> None:
    """The pages' and the site builds' figures, read from the store at `url`."""
    settings = settings_file(root, url, ids[:200], tags={n: ["oncology"] for n in ids[:50]})
    if not args.site_only:
        print(f"{'page (server time, median)':34} {'ms':>8} {'of target':>10}")
        for name, ms in page_figures(settings, ids, args.runs):
            print(f"{name:34} {ms:8.1f} {ms / TARGET_MS:9.2f}×")
    if not args.pages_only:
        site_figures(settings, url, root / "site", ids, changed=args.changed, jobs=args.jobs)


def site_figures(settings: Path, url: str, site: Path, ids: list[str], *, changed: int, jobs: int) -> None:
    config = load_config(settings)
    with Store(url) as store:
        started = time.perf_counter()
        full = build_site(config, store, site, now=NOW, full=True, jobs=jobs)
        full_s = time.perf_counter() - started
        changed_versions(store, ids, changed)
        started = time.perf_counter()
        again = build_site(config, store, site, now=NOW)
        again_s = time.perf_counter() - started
    per_trial = 1000 * full_s / max(full.trials_written, 1)
    print(
        f"site build, full ({jobs} job{'s' if jobs > 1 else ''}): {full_s:8.2f} s  {full.trials_written:,} trials "
        f"({per_trial:.1f} ms a trial), {full.files_written:,} files"
    )
    print(
        f"site build, {changed} changed: {again_s:8.2f} s  {again.trials_written:,} trials, "
        f"{again.files_written:,} files = {again_s / full_s:.1%} of full (target < {TARGET_RATIO:.0%})"
    )


if __name__ == "__main__":
    main()
