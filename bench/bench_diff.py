"""How much does telling what changed cost, compared with reading the record?

For each of the 17 real records (found by tests/support/shared.py), build a realistic new version (a status
change, a site opening or closing, an enrollment update, the last-update date, a data
refresh of the derived section), then time, on the same pair of JSON texts:

    parse  = json.loads(old) + json.loads(new)
    detect = extract_fields(old) + extract_fields(new) + diff_fields(old, new)

and print detect / parse per pair and over all pairs (sum over sum). Target: <= 1.0.
Each figure is the best of several rounds, to keep scheduler noise out.

    /work/venv/bin/python bench/bench_diff.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import shared
from watcher.detect.diff import diff_fields
from watcher.detect.fields import extract_fields
from watcher.detect.meaning import classify


def realistic_edit(record: dict[str, Any]) -> dict[str, Any]:
    """The kind of update a sponsor posts: status, one site, enrollment, dates, data refresh."""
    new = copy.deepcopy(record)
    ps = new["protocolSection"]
    status = ps["statusModule"]
    recruiting = status["overallStatus"] == "RECRUITING"
    status["overallStatus"] = "ACTIVE_NOT_RECRUITING" if recruiting else "RECRUITING"
    status["lastUpdatePostDateStruct"]["date"] = "2026-05-12"
    status["statusVerifiedDate"] = "2026-05"
    enrollment = ps["designModule"].get("enrollmentInfo")
    if enrollment:
        enrollment["count"] = int(enrollment.get("count", 0)) + 25
    sites = ps.get("contactsLocationsModule", {}).get("locations", [])
    if len(sites) > 2:
        del sites[len(sites) // 2]
        sites[0]["status"] = "RECRUITING" if sites[0].get("status") != "RECRUITING" else "COMPLETED"
    elif sites:
        sites.append({**copy.deepcopy(sites[0]), "facility": "New Site Hospital", "status": "RECRUITING"})
    new["derivedSection"]["miscInfoModule"]["versionHolder"] = "2026-05-13"
    return new


def parse_pair(old_text: str, new_text: str) -> None:
    json.loads(old_text)
    json.loads(new_text)


def detect_changes(old_record: dict[str, Any], new_record: dict[str, Any]) -> object:
    return diff_fields(extract_fields(old_record), extract_fields(new_record))


def classify_changes(old_record: dict[str, Any], new_record: dict[str, Any]) -> object:
    old, new = extract_fields(old_record), extract_fields(new_record)
    return classify(diff_fields(old, new), old, new)


def best(func: Callable[[], object], rounds: int, loops: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(loops):
            func()
        times.append((time.perf_counter() - start) / loops)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    try:
        shared.study_paths()
    except shared.FixturesNotFound as exc:
        raise SystemExit(f"bench_diff: {exc}") from None
    print(f"{'record':<13} {'size':>9} {'changes':>7} {'parse ms':>9} {'detect ms':>9} {'ratio':>6} {'+classify':>9}")
    parse_total = detect_total = classify_total = 0.0
    for nct_id in shared.STUDY_IDS:
        old_text = shared.study_text(nct_id)
        new_text = json.dumps(realistic_edit(json.loads(old_text)), indent=2, ensure_ascii=False)
        old_record, new_record = json.loads(old_text), json.loads(new_text)
        size = len(old_text.encode()) + len(new_text.encode())
        loops = max(1, 2_000_000 // size)

        parse = partial(parse_pair, old_text, new_text)
        detect = partial(detect_changes, old_record, new_record)
        meaning = partial(classify_changes, old_record, new_record)
        parse_s = best(parse, args.rounds, loops)
        detect_s = best(detect, args.rounds, loops)
        classify_s = best(meaning, args.rounds, loops)
        changes = diff_fields(extract_fields(old_record), extract_fields(new_record))
        parse_total += parse_s
        detect_total += detect_s
        classify_total += classify_s
        print(
            f"{nct_id:<13} {size / 1e6:>7.2f}MB {len(changes):>7} {parse_s * 1e3:>9.3f}"
            f" {detect_s * 1e3:>9.3f} {detect_s / parse_s:>6.2f} {classify_s / parse_s:>9.2f}"
        )
    print(
        f"{'all pairs':<13} {'':>9} {'':>7} {parse_total * 1e3:>9.3f} {detect_total * 1e3:>9.3f}"
        f" {detect_total / parse_total:>6.2f} {classify_total / parse_total:>9.2f}"
    )
    print(f"ratio (extract + diff) / json.loads = {detect_total / parse_total:.2f}  (target <= 1.0)")


if __name__ == "__main__":
    main()
