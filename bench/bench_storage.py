"""Bytes stored per snapshot version, over the real fixture records, relative to their raw JSON.

Each of the 17 real records (found by tests/support/shared.py) gets a history of the edits sponsors
make (status changes, an enrollment update, a new site, a date slip, an eligibility edit, a
results-free revert A→B→A), and every version is stored through `store.versions.save` exactly as
the poller stores it. Printed: raw JSON per version (as the API sends it), bytes held in
blobs, and the SQLite file after VACUUM (rows, indexes and pages included).

    python bench/bench_storage.py            # the target is ≤ 15% of raw JSON per version
"""

from __future__ import annotations

import argparse
import copy
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import shared  # noqa: E402
from watcher.detect.record import content_hash  # noqa: E402
from watcher.service.logs import configure  # noqa: E402
from watcher.store import Store  # noqa: E402

TARGET = 0.15
Edit = Callable[[dict[str, Any], int], None]


def _status(value: str) -> Edit:
    def edit(study: dict[str, Any], _n: int) -> None:
        study["protocolSection"]["statusModule"]["overallStatus"] = value

    return edit


def _enrollment(study: dict[str, Any], n: int) -> None:
    info = study["protocolSection"].setdefault("designModule", {}).setdefault("enrollmentInfo", {})
    info["count"] = int(info.get("count") or 100) + 25 * n


def _site(study: dict[str, Any], n: int) -> None:
    module = study["protocolSection"].setdefault("contactsLocationsModule", {})
    module.setdefault("locations", []).append(
        {"facility": f"Bench Hospital {n}", "city": "Lyon", "country": "France", "status": "RECRUITING"}
    )


def _date_slip(study: dict[str, Any], n: int) -> None:
    status = study["protocolSection"]["statusModule"]
    status["primaryCompletionDateStruct"] = {"date": f"{2027 + n}-06-30", "type": "ESTIMATED"}


def _eligibility(study: dict[str, Any], n: int) -> None:
    module = study["protocolSection"].setdefault("eligibilityModule", {})
    module["eligibilityCriteria"] = str(module.get("eligibilityCriteria", "")) + f"\n* Exclusion {n}: prior therapy"


EDITS: tuple[Edit, ...] = (
    _status("SUSPENDED"),
    _enrollment,
    _status("RECRUITING"),
    _site,
    _date_slip,
    _eligibility,
    _status("ACTIVE_NOT_RECRUITING"),
)


def history(study: dict[str, Any], count: int) -> Iterator[dict[str, Any]]:
    """`count` versions: the real record, then the edits in turn, each with a new last-update date."""
    current = copy.deepcopy(study)
    yield current
    for n in range(1, count):
        current = copy.deepcopy(current)
        EDITS[(n - 1) % len(EDITS)](current, n)
        status = current["protocolSection"]["statusModule"]
        day = f"2026-{1 + n // 28:02d}-{1 + n % 28:02d}"
        status["lastUpdatePostDateStruct"] = {"date": day, "type": "ACTUAL"}
        status["lastUpdateSubmitDate"] = day
        current.setdefault("derivedSection", {}).setdefault("miscInfoModule", {})["versionHolder"] = day
        yield current


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--versions", type=int, default=8, help="versions per trial (default 8)")
    args = parser.parse_args(argv)
    try:
        studies = shared.load_studies()
    except shared.FixturesNotFound as exc:
        raise SystemExit(f"bench_storage: {exc}") from None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        with Store(f"sqlite:///{path}") as store:
            raw = first_raw = versions = 0
            at = datetime(2026, 1, 1, tzinfo=UTC)
            started = time.perf_counter()
            for index, study in enumerate(studies):
                nct_id = study["protocolSection"]["identificationModule"]["nctId"]
                for number, record in enumerate(history(study, args.versions)):
                    size = len(json.dumps(record, ensure_ascii=False).encode("utf-8"))
                    raw += size
                    versions += 1
                    if number == 0:
                        first_raw += size
                    store.versions.save(
                        nct_id,
                        record,
                        fetched_at=at + timedelta(days=index, hours=number),
                        digest=content_hash(record),
                        changes=[],
                        baseline=number == 0,
                    )
            elapsed = time.perf_counter() - started
            stats = store.retention.stats()
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("VACUUM")
        file_bytes = path.stat().st_size

        baseline_only = Path(tmp) / "first.sqlite"
        with Store(f"sqlite:///{baseline_only}") as first:
            for study in studies:
                nct_id = study["protocolSection"]["identificationModule"]["nctId"]
                first.versions.save(nct_id, study, fetched_at=at, digest=content_hash(study), changes=[], baseline=True)
            first_blob_bytes = first.retention.stats().blob_bytes

    per_raw, per_blob, per_file = raw / versions, stats.blob_bytes / versions, file_bytes / versions
    print(f"fixtures:        {len(studies)} real records, {args.versions} versions each = {versions} versions")
    print(f"raw JSON:        {raw:>11,} bytes  ({per_raw:>9,.0f} per version)")
    print(
        f"stored (blobs):  {stats.blob_bytes:>11,} bytes  ({per_blob:>9,.0f} per version) = "
        f"{per_blob / per_raw:6.2%} of raw  [{stats.blobs} blobs, zstd, content-addressed]"
    )
    print(
        f"SQLite file:     {file_bytes:>11,} bytes  ({per_file:>9,.0f} per version) = "
        f"{per_file / per_raw:6.2%} of raw  [after VACUUM; rows and indexes included]"
    )
    print(
        f"first versions:  {first_blob_bytes:>11,} bytes of {first_raw:,} raw = "
        f"{first_blob_bytes / first_raw:6.2%} (compression alone, no history to share)"
    )
    print(f"save_version:    {elapsed / versions * 1000:.1f} ms per version")
    ok = per_file / per_raw <= TARGET
    print(f"target:          ≤ {TARGET:.0%} of raw JSON per version: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    configure("warning", "console")
    sys.exit(main())
