"""What TrialWatch says about every real pair of successive versions, and what it costs.

For each pair in `pairs/` (found by tests/support/shared.py), run a poll cycle's pure path
(`tests/support/real_pairs.py`: changes_between → default filters → payload → text) and print:
pairs; bookkeeping-only pairs notified (target 0; the one annotation event may be); substantive
pairs notified (target all); removed + added lines that are the same item, with each version
named on its own (the seed's naming) and with items matched (`detect.match`); lines whose old and
new read the same; the largest rendered message in lines; the median time per pair; and the time of
changes_between over json.loads of the same two texts (sum over sum).

    python -m bench.bench_pairs [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import real_pairs, shared
from watcher.detect import changes_between
from watcher.detect.diff import diff_aligned
from watcher.detect.fields import extract_fields


def best(func: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="one line per pair")
    args = parser.parse_args()
    try:
        shared.pairs_dir()
    except shared.FixturesNotFound as exc:
        raise SystemExit(f"bench_pairs: {exc}") from None

    pairs = bookkeeping = bookkeeping_notified = annotation = annotation_notified = 0
    substantive = substantive_notified = 0
    same_seed = same_matched = same_reading = 0
    seed_pairs: set[str] = set()
    largest, largest_id = 0, ""
    per_pair: list[float] = []
    parse_total = detect_total = 0.0
    for pair in real_pairs.pairs():
        pairs += 1
        outcome = real_pairs.run(pair)
        if pair.bookkeeping_only and pair.annotation:
            annotation += 1
            annotation_notified += bool(outcome.notified)
        elif pair.bookkeeping_only:
            bookkeeping += 1
            bookkeeping_notified += bool(outcome.notified)
        else:
            substantive += 1
            substantive_notified += bool(outcome.notified)
        seed = real_pairs.removed_added_same(diff_aligned(extract_fields(pair.old), extract_fields(pair.new)))
        same_seed += len(seed)
        if seed:
            seed_pairs.add(pair.id)
        same_matched += len(real_pairs.removed_added_same(outcome.changes))
        same_reading += len(real_pairs.same_reading_lines(outcome.body))
        if outcome.lines > largest:
            largest, largest_id = outcome.lines, pair.id

        old_text, new_text = pair.old_text, pair.new_text
        old, new = pair.old, pair.new
        parse_s = best(lambda: (json.loads(old_text), json.loads(new_text)), args.rounds)  # noqa: B023
        detect_s = best(lambda: changes_between(old, new), args.rounds)  # noqa: B023
        cycle_s = best(lambda: real_pairs.run(pair), args.rounds)  # noqa: B023
        parse_total += parse_s
        detect_total += detect_s
        per_pair.append(cycle_s)
        if args.verbose:
            print(
                f"{pair.id:<58} {len(outcome.changes):>5} changes {outcome.lines:>4} lines"
                f" {cycle_s * 1e3:>8.2f} ms {detect_s / parse_s:>5.2f}x"
            )

    print(f"pairs                                      {pairs}")
    print(f"bookkeeping-only pairs notified            {bookkeeping_notified} of {bookkeeping}  (target 0)")
    print(f"annotation-only pairs notified             {annotation_notified} of {annotation}  (allowed)")
    print(f"substantive pairs notified                 {substantive_notified} of {substantive}")
    print(
        f"removed+added lines of the same item       {2 * same_seed} in {len(seed_pairs)} pairs with the seed's "
        f"naming -> {2 * same_matched} with items matched"
    )
    print(f"lines whose old and new read the same      {same_reading}")
    print(f"largest rendered message                   {largest} lines ({largest_id})")
    print(f"median time per pair (detect..render)      {statistics.median(per_pair) * 1e3:.2f} ms")
    print(f"changes_between / json.loads (sum/sum)     {detect_total / parse_total:.2f}")


if __name__ == "__main__":
    main()
