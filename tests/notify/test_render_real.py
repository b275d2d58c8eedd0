"""Human formats on real successive versions (`shared/fixtures/ctgov/pairs/`): the difference
is visible, the headline is the change that matters most, bulk changes are summarised.

Each pair goes the way a poll cycle takes it: old record → new record → classified changes
(bookkeeping left out) → outbox payload → every channel format.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import msgspec
import pytest

from tests.support.shared import pairs_dir
from watcher.detect import changes_between
from watcher.detect.catalog import is_bookkeeping
from watcher.messages import ChangesPayload
from watcher.models import Change, Trial
from watcher.notify.formats import FORMATS, Context, Delivery, SummaryEntry, context
from watcher.notify.payloads import changes_payload

AT = datetime(2026, 3, 1, tzinfo=UTC)


def _versions(study: Path) -> list[Path]:
    """A study's files in version order (the part after `_` is the versionHolder date)."""
    return sorted(study.glob("*.json"), key=lambda f: (f.stem.split("_")[1], f.stem))


def pairs() -> Iterator[tuple[str, Path, Path]]:
    for study in sorted(p for p in pairs_dir().iterdir() if p.is_dir()):
        files = _versions(study)
        for old, new in itertools.pairwise(files):
            yield study.name, old, new


@cache
def changes_of(old: Path, new: Path) -> tuple[Change, ...]:
    before, after = (json.loads(p.read_text(encoding="utf-8")) for p in (old, new))
    return tuple(c for c in changes_between(before, after) if not is_bookkeeping(c.field))


def pair(nct_id: str, new_stem: str) -> tuple[Path, Path]:
    for study, old, new in pairs():
        if study == nct_id and new.stem == new_stem:
            return old, new
    pytest.skip(f"pair {nct_id} → {new_stem} not in the shared fixtures")


def payload_of(nct_id: str, old: Path, new: Path) -> ChangesPayload:
    record = json.loads(new.read_text(encoding="utf-8"))
    title = record["protocolSection"]["identificationModule"].get("briefTitle")
    return changes_payload(Trial(nct_id), title, changes_of(old, new), version=2, detected_at=AT)


def ctx_of(nct_id: str, old: Path, new: Path) -> Context:
    return context(payload_of(nct_id, old, new), Delivery(channel="stdout", message_id=None, created_at=AT, now=AT))


_ARROW = re.compile(r": (?P<old>.+) → (?P<new>.+?)(?: — .*)?$")


def test_no_line_shows_old_and_new_that_read_the_same_in_any_format() -> None:
    seen = 0
    for nct_id, old, new in pairs():
        if not changes_of(old, new):
            continue
        ctx = ctx_of(nct_id, old, new)
        for change in ctx.changes:
            seen += 1
            if change.diff is None:
                assert change.old_text != change.new_text or "→" not in change.line, change.line
        for render in FORMATS.values():
            rendered = render(ctx)
            for text in (*rendered.parts, rendered.plain or ""):
                for line in text.splitlines():
                    match = _ARROW.search(line)
                    if match and "`" not in match["old"] and "<" not in match["old"]:
                        assert match["old"].strip() != match["new"].strip(), (nct_id, line)
    assert seen > 100


def test_a_late_difference_in_a_long_text_is_shown_as_a_word_diff() -> None:
    old, new = pair("NCT06780137", "2026-03-06_2026-03-09")
    ctx = ctx_of("NCT06780137", old, new)
    change = next(c for c in ctx.changes if c.field == "design.interventionModelDescription")
    assert "[-three-] {+four+} arms" in change.line
    assert "[-three-] {+four+} arms" in ctx.body_text
    payload = payload_of("NCT06780137", old, new)
    only = tuple(c for c in payload.changes if c.field == "design.interventionModelDescription")
    ctx = context(
        msgspec.structs.replace(payload, changes=only), Delivery(channel="x", message_id=None, created_at=AT, now=AT)
    )
    html = FORMATS["email"](ctx).parts[0]
    assert "<del>three</del>" in html
    assert "<ins>four</ins>" in html
    slack = FORMATS["slack"](ctx).parts[0]
    assert "~three~ *four* arms" in slack
    telegram = "\n".join(FORMATS["telegram"](ctx).parts)
    assert "<del>three</del> <ins>four</ins> arms" in telegram


def test_a_number_changed_at_the_end_of_a_summary_is_visible() -> None:
    old, new = pair("NCT05414032", "2026-02-25_2026-02-25")
    lines = ctx_of("NCT05414032", old, new).body_text.splitlines()
    summary = next(line for line in lines if line.startswith("description.briefSummary:"))
    assert summary.endswith("Approximately [-200-] {+100+} patients are expected to be enrolled.")
    assert len(summary) < 200


def test_an_item_added_at_the_end_of_a_long_list_is_visible() -> None:
    old, new = pair("NCT07098338", "2026-02-05_2026-02-09")
    line = next(
        c.line
        for c in ctx_of("NCT07098338", old, new).changes
        if c.field == "armsInterventions.interventions.DRUG|Ramucirumab.armGroupLabels"
    )
    assert "[-2L-] {+2/3L+}" in line


@pytest.mark.parametrize(
    ("nct_id", "new_stem", "headline"),
    [
        ("NCT07227597", "2026-02-20_2026-03-09", "Status changed from NOT_YET_RECRUITING to RECRUITING"),
        ("NCT05414032", "2026-02-25_2026-02-25", "Enrollment changed from 200 to 102 (-49.0%), ESTIMATED"),
        ("NCT07011550", "2026-02-19_2026-02-19", "Status changed from RECRUITING to SUSPENDED: FDA"),
        ("NCT07098338", "2026-02-05_2026-02-09", "Primary completion date slipped 747 days later"),
        ("NCT06362252", "2026-02-06_2026-02-09", "Sites: 20 now RECRUITING: Hôpital de la Timone, Marseille; "),
    ],
)
def test_the_headline_is_the_change_of_highest_clinical_priority(nct_id: str, new_stem: str, headline: str) -> None:
    old, new = pair(nct_id, new_stem)
    ctx = ctx_of(nct_id, old, new)
    assert ctx.headline.startswith(headline)
    assert ctx.title.startswith(f"{nct_id}: {headline}")
    assert ctx.trial is not None
    assert (ctx.trial.entries[0].summary or "").startswith(headline)


def test_a_reworded_time_frame_never_outranks_a_status_transition_on_any_real_pair() -> None:
    checked = 0
    for nct_id, old, new in pairs():
        kinds = [c.event.kind for c in changes_of(old, new) if c.event]
        if "status_transition" in kinds:
            checked += 1
            trial = ctx_of(nct_id, old, new).trial
            assert trial is not None and trial.changes[0].event is not None
            assert trial.changes[0].event.kind == "status_transition"
    assert checked >= 8


def test_a_reopening_with_hundreds_of_site_lines_reads_as_one_summary_line() -> None:
    old, new = pair("NCT06203210", "2026-02-09_2026-02-09")
    ctx = ctx_of("NCT06203210", old, new)
    assert ctx.count > 400 and ctx.trial is not None
    sites = [e for e in ctx.trial.entries if isinstance(e, SummaryEntry) and e.family == "locations"]
    assert len(sites) == 1
    assert sites[0].summary.startswith("Sites: 176 now RECRUITING: AdventHealth Orlando, Cancer Institute, Orlando; ")
    assert " · 54 now NOT_YET_RECRUITING: " in sites[0].summary
    assert sites[0].summary.endswith("…and 46 more")
    plain = FORMATS["email"](ctx).plain or ""
    assert len(plain.splitlines()) < 30
    assert plain.count("Sites:") == 1
    assert ctx.title.startswith("NCT06203210: Status changed from ACTIVE_NOT_RECRUITING to RECRUITING")
    document = FORMATS["json"](ctx).document or {}
    assert len(document["changes"]) == ctx.count, "the webhook keeps every change"
    marked = [c for c in document["changes"] if c["summarised"] == "locations"]
    assert len(marked) == sites[0].count == ctx.count - 4
    assert document["summaries"] == [{"family": "locations", "summary": sites[0].summary, "changes": sites[0].count}]


def test_every_real_change_set_fits_an_email_and_telegram_splits_are_rare() -> None:
    largest, split = 0, []
    for nct_id, old, new in pairs():
        if not changes_of(old, new):
            continue
        ctx = ctx_of(nct_id, old, new)
        largest = max(largest, len((FORMATS["email"](ctx).plain or "").splitlines()))
        if len(FORMATS["telegram"](ctx).parts) > 1:
            split.append(nct_id)
    assert largest <= 60
    assert len(split) <= 1, split


def test_a_results_submission_reads_as_one_minor_sentence_in_every_format() -> None:
    old, new = _annotation_pair()
    (change,) = changes_of(old, new)
    sentence = "Results submitted to ClinicalTrials.gov on 2026-01-23, returned for corrections on 2026-02-09"
    assert change.severity == "minor"
    assert change.event is not None and change.event.kind == "results_submission"
    assert change.event.summary == sentence
    ctx = ctx_of("NCT04457778", old, new)
    assert ctx.title == f"NCT04457778: {sentence}"
    assert f"annotation.unpostedAnnotation.unpostedEvents: {sentence}" in ctx.body_text
    assert "type: RELEASE" not in ctx.body_text
    for name in ("slack", "telegram", "email"):
        rendered = FORMATS[name](ctx)
        text = "\n".join(rendered.parts)
        assert sentence in text and "RELEASE" not in text, name


def _annotation_pair() -> tuple[Path, Path]:
    for study, old, new in pairs():
        if study == "NCT04457778" and changes_of(old, new):
            return old, new
    pytest.skip("NCT04457778's annotation pair is not in the shared fixtures")
