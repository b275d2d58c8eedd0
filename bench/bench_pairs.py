"""What TrialWatch says about every real pair of successive versions, and what it costs.

For each pair in `pairs/` (found by tests/support/shared.py), run a poll cycle's pure path
(`tests/support/real_pairs.py`: changes_between → default filters → payload → text) and print:
pairs; bookkeeping-only pairs notified (target 0; the one annotation event may be); substantive
pairs notified (target all); removed + added lines that are the same item, with each version
named on its own (the seed's naming) and with items matched (`detect.match`); lines whose old and
new read the same; how many notified changes of substantive pairs are named in what a person reads
(the item's own name — facility, label, measure, citation — or a plain field's own line);
the largest rendered message in lines; the median time per pair; and the time of
changes_between over json.loads of the same two texts (sum over sum).

    python -m bench.bench_pairs [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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


def kind_of(pair: real_pairs.Pair) -> str:
    """What the pair's edits are: bookkeeping only (never notified), the one annotation, or substantive."""
    if pair.bookkeeping_only:
        return "annotation" if pair.annotation else "bookkeeping"
    return "substantive"


@dataclass
class Quality:
    """What is said about the pairs: who is notified, and the lines that should not be there."""

    pairs: Counter[str] = field(default_factory=Counter)  # by kind_of
    notified: Counter[str] = field(default_factory=Counter)
    same_seed: int = 0  # removed + added of the same item, each version named on its own
    seed_pairs: set[str] = field(default_factory=set)
    same_matched: int = 0  # the same, with items matched
    same_reading: int = 0
    largest: int = 0
    largest_id: str = ""
    named: int = 0  # substantive notified changes whose item (or field) is named in subject or body
    named_of: int = 0

    def add(self, pair: real_pairs.Pair, outcome: real_pairs.Outcome) -> None:
        kind = kind_of(pair)
        self.pairs[kind] += 1
        self.notified[kind] += bool(outcome.notified)
        seed = real_pairs.removed_added_same(diff_aligned(extract_fields(pair.old), extract_fields(pair.new)))
        self.same_seed += len(seed)
        if seed:
            self.seed_pairs.add(pair.id)
        self.same_matched += len(real_pairs.removed_added_same(outcome.changes))
        self.same_reading += len(real_pairs.same_reading_lines(outcome.body))
        if kind == "substantive":
            named, of = real_pairs.named(pair, outcome)
            self.named += named
            self.named_of += of
        if outcome.lines > self.largest:
            self.largest, self.largest_id = outcome.lines, pair.id


@dataclass
class Cost:
    """What it takes: a whole pair (detect..render), and changes_between beside json.loads."""

    per_pair: list[float] = field(default_factory=list)
    parse_total: float = 0.0
    detect_total: float = 0.0

    def add(self, pair: real_pairs.Pair, rounds: int) -> tuple[float, float, float]:
        """Times one pair best of `rounds`: (json.loads of both texts, changes_between, the whole path)."""
        parse_s = best(lambda: (json.loads(pair.old_text), json.loads(pair.new_text)), rounds)
        detect_s = best(lambda: changes_between(pair.old, pair.new), rounds)
        cycle_s = best(lambda: real_pairs.run(pair), rounds)
        self.parse_total += parse_s
        self.detect_total += detect_s
        self.per_pair.append(cycle_s)
        return parse_s, detect_s, cycle_s


def report(quality: Quality, cost: Cost) -> None:
    pairs, notified = quality.pairs, quality.notified
    print(f"pairs                                      {pairs.total()}")
    print(f"bookkeeping-only pairs notified            {notified['bookkeeping']} of {pairs['bookkeeping']}  (target 0)")
    print(f"annotation-only pairs notified             {notified['annotation']} of {pairs['annotation']}  (allowed)")
    print(f"substantive pairs notified                 {notified['substantive']} of {pairs['substantive']}")
    print(
        f"removed+added lines of the same item       {2 * quality.same_seed} in {len(quality.seed_pairs)} pairs "
        f"with the seed's naming -> {2 * quality.same_matched} with items matched"
    )
    print(f"lines whose old and new read the same      {quality.same_reading}")
    share = quality.named / quality.named_of if quality.named_of else 1.0
    print(f"substantive changes named in the message   {quality.named} of {quality.named_of} ({share:.0%})")
    print(f"largest rendered message                   {quality.largest} lines ({quality.largest_id})")
    print(f"median time per pair (detect..render)      {statistics.median(cost.per_pair) * 1e3:.2f} ms")
    print(f"changes_between / json.loads (sum/sum)     {cost.detect_total / cost.parse_total:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="one line per pair")
    args = parser.parse_args()
    try:
        shared.pairs_dir()
    except shared.FixturesNotFound as exc:
        raise SystemExit(f"bench_pairs: {exc}") from None

    quality, cost = Quality(), Cost()
    for pair in real_pairs.pairs():
        outcome = real_pairs.run(pair)
        quality.add(pair, outcome)
        parse_s, detect_s, cycle_s = cost.add(pair, args.rounds)
        if args.verbose:
            print(
                f"{pair.id:<58} {len(outcome.changes):>5} changes {outcome.lines:>4} lines"
                f" {cycle_s * 1e3:>8.2f} ms {detect_s / parse_s:>5.2f}x"
            )
    report(quality, cost)


if __name__ == "__main__":
    main()
