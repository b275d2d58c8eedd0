"""What storing first versions costs, as a multiple of `json.loads` of the same records.

N synthetic studies are made from the real fixture records (each copy gets its own NCT ID and its
own text in every module, so no part is shared with another copy: a first sync's worst case for
deduplication). They are stored the way a cycle stores trials it has never seen: content hash,
one look-up of the stored hashes per page, the save. `json.loads` of the same records' compact JSON
is timed in the same run, so the ratio does not depend on the machine.

    python -m bench.bench_store --trials 1000                       # SQLite in a temporary file
    python -m bench.bench_store --trials 1000 --db postgresql+psycopg://postgres@127.0.0.1/bench
    python -m bench.bench_store --trials 1 --warmup 100 --profile   # cProfile of one first version
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import shared  # noqa: E402
from watcher.detect.record import content_hash  # noqa: E402
from watcher.service.logs import configure  # noqa: E402
from watcher.store import Store  # noqa: E402
from watcher.store.values import NewVersion  # noqa: E402

PAGE = 100
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _touch(value: Any, tag: str) -> Any:
    """`value` with `tag` appended to its first string: the part's digest becomes unique."""
    if isinstance(value, str):
        return value + tag
    if isinstance(value, dict):
        for key, inner in value.items():
            changed = _touch(inner, tag)
            if changed is not inner:
                value[key] = changed
                return value
    if isinstance(value, list):
        for i, inner in enumerate(value):
            changed = _touch(inner, tag)
            if changed is not inner:
                value[i] = changed
                return value
    return value


def synthetic(count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` distinct studies made from the real records."""
    studies = shared.load_studies()
    out = []
    for n in range(count):
        study = copy.deepcopy(studies[n % len(studies)])
        nct_id = f"NCT9{n:07d}"
        study["protocolSection"]["identificationModule"]["nctId"] = nct_id
        for section in (study.get("protocolSection", {}), study):
            for key, module in section.items():
                if key != "protocolSection":
                    _touch(module, f" [{n}]")
        out.append((nct_id, study))
    return out


def _store_pages(store: Store, items: list[tuple[str, dict[str, Any]]]) -> None:
    """The cycle's path for trials seen for the first time, a page at a time."""
    for start in range(0, len(items), PAGE):
        page = items[start : start + PAGE]
        known = store.versions.latest_hashes([n for n, _ in page])
        todo = [
            NewVersion(nct_id=n, record=r, digest=content_hash(r), fetched_at=T0, changes=(), baseline=True)
            for n, r in page
        ]
        store.versions.save_many([v for v in todo if known.get(v.nct_id) != v.digest])


def _timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the store (top 25)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="store this many other trials first, unmeasured (SQL compiled, caches warm)",
    )
    args = parser.parse_args(argv)
    configure(level="WARNING")
    both = synthetic(args.warmup + args.trials)
    warmup, items = both[: args.warmup], both[args.warmup :]
    texts = [json.dumps(r, separators=(",", ":"), ensure_ascii=False) for _, r in items]
    loads = min(_timed(lambda: [json.loads(t) for t in texts]) for _ in range(3))
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        with Store(url) as store:
            try:
                _store_pages(store, warmup)
                profiler = cProfile.Profile() if args.profile else None
                if profiler:
                    profiler.enable()
                spent = _timed(lambda: _store_pages(store, items))
                if profiler:
                    profiler.disable()
                rows = store.retention.stats()
            finally:
                _drop(store, args.db is not None)
    n = len(items)
    print(f"database:        {url.split('://')[0]}")
    print(
        f"first versions:  {n} synthetic studies from {len(shared.load_studies())} real records, "
        f"{sum(map(len, texts)) / n:,.0f} bytes of JSON each"
    )
    print(f"json.loads:      {1000 * loads / n:8.3f} ms per trial")
    print(f"store:           {1000 * spent / n:8.3f} ms per trial = {spent / loads:6.1f}x json.loads")
    per_version = rows.blob_bytes / max(rows.versions, 1)
    print(f"stored:          {rows.versions} versions, {per_version:,.0f} bytes of blobs per trial")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return 0


def _drop(store: Store, keep_schema: bool) -> None:
    """A PostgreSQL database given on the command line is emptied again (the bench's rows only)."""
    if not keep_schema:
        return
    from sqlalchemy import text

    with store.engine.begin() as conn:
        for table in ("changes", "outbox", "snapshots", "trials", "blobs"):
            conn.execute(text(f"DELETE FROM {table}"))


if __name__ == "__main__":
    raise SystemExit(main())
