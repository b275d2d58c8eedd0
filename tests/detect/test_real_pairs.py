"""Every real pair of successive versions (`pairs/`), through a poll cycle's pure path.

Stored version → new version → `changes_between` → the default filters → payload → text
(`tests/support/real_pairs.py`). Bookkeeping-only and same-item are judged from `truth.json` and the items'
own evidence, not from what the code under test says. `python -m bench.bench_pairs` prints the figures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import real_pairs
from tests.support.real_pairs import Outcome, Pair

LINE_BUDGET = 60  # an email plain part stays under ~60 lines for any real change set


@pytest.fixture(scope="module")
def outcomes() -> dict[str, tuple[Pair, Outcome]]:
    return {pair.id: (pair, real_pairs.run(pair)) for pair in real_pairs.pairs()}


def each(outcomes: dict[str, tuple[Pair, Outcome]]) -> Iterator[tuple[Pair, Outcome]]:
    yield from outcomes.values()


def test_the_corpus_is_what_the_issue_describes(outcomes: dict[str, tuple[Pair, Outcome]]) -> None:
    pairs = [p for p, _ in each(outcomes)]
    assert len(pairs) == 92
    assert len({p.nct_id for p in pairs}) == 69
    assert sum(p.bookkeeping_only for p in pairs) == 33
    assert sum(p.bookkeeping_only and p.annotation for p in pairs) == 1


def test_no_notification_when_only_bookkeeping_moved(outcomes: dict[str, tuple[Pair, Outcome]]) -> None:
    notified = [p.id for p, o in each(outcomes) if p.bookkeeping_only and o.notified and not p.annotation]
    assert notified == []


def test_an_annotation_event_may_be_notified_but_nothing_else(outcomes: dict[str, tuple[Pair, Outcome]]) -> None:
    for pair, outcome in each(outcomes):
        if pair.bookkeeping_only and pair.annotation:
            assert all(c.field.startswith("annotation.") for c in outcome.notified), pair.id


def test_every_substantive_change_is_notified(outcomes: dict[str, tuple[Pair, Outcome]]) -> None:
    missed = [p.id for p, o in each(outcomes) if not p.bookkeeping_only and not o.notified]
    assert missed == []
    assert sum(not p.bookkeeping_only for p, _ in each(outcomes)) == 59


def test_no_item_is_reported_removed_and_added_when_it_is_the_same(outcomes: dict[str, tuple[Pair, Outcome]]) -> None:
    same = {p.id: [(r.field, a.field) for r, a in real_pairs.removed_added_same(o.changes)] for p, o in each(outcomes)}
    assert {k: v for k, v in same.items() if v} == {}


def test_the_evidence_for_same_item_finds_what_the_seed_naming_got_wrong() -> None:
    """The judge is not circular: on the seed's naming (each version keyed on its own) it finds the
    known cases, e.g. the Haifa "Research Site" whose key gained its zip code."""
    from watcher.detect.diff import diff_aligned
    from watcher.detect.fields import extract_fields

    found = 0
    pairs_with = set()
    for pair in real_pairs.pairs():
        naive = diff_aligned(extract_fields(pair.old), extract_fields(pair.new))
        same = real_pairs.removed_added_same(naive)
        found += len(same)
        if same:
            pairs_with.add(pair.nct_id)
    assert found >= 45
    assert {"NCT06868277", "NCT06203210", "NCT06892548", "NCT05414032"} <= pairs_with


def test_every_notified_pair_renders(outcomes: dict[str, tuple[Pair, Outcome]]) -> None:
    for pair, outcome in each(outcomes):
        if outcome.notified:
            assert pair.nct_id in outcome.subject or pair.nct_id in outcome.body, pair.id
            assert outcome.body.strip(), pair.id


def test_no_line_shows_old_and_new_that_read_the_same(outcomes: dict[str, tuple[Pair, Outcome]]) -> None:
    same = {p.id: real_pairs.same_reading_lines(o.body) for p, o in each(outcomes)}
    assert {k: v for k, v in same.items() if v} == {}


def test_every_message_is_within_the_line_budget(outcomes: dict[str, tuple[Pair, Outcome]]) -> None:
    over = {p.id: o.lines for p, o in each(outcomes) if o.lines > LINE_BUDGET}
    assert over == {}
