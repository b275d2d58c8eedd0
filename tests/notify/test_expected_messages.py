"""What a person reads for named real pairs, against expectations written by hand from the records
(`expected_messages.yaml`): every site named in the group of what happened to it, look-alikes told
apart, no internal key, a label holding "→" quoted, a month-precision date in months."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest

from tests.support import expected_messages, real_pairs
from watcher.detect.record import title_of
from watcher.models import Trial
from watcher.notify.formats import FORMATS, Context, Delivery, SummaryEntry, context
from watcher.notify.payloads import changes_payload

AT = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
IDS = expected_messages.pair_ids()


def _context(case: expected_messages.Expected, channel: str = "email") -> Context:
    outcome = real_pairs.run(case.pair)
    assert outcome.notified, case.why
    payload = changes_payload(
        Trial(case.pair.nct_id), title_of(case.pair.new), outcome.notified, version=2, detected_at=AT
    )
    return context(payload, Delivery(channel=channel, message_id=None, created_at=AT, now=AT))


def _everything_read(ctx: Context) -> list[str]:
    """Subject and body of every human format, HTML read as text."""
    out = [ctx.title, ctx.body_text]
    for kind in ("email", "slack", "telegram", "text"):
        rendered = FORMATS[kind](ctx)
        out += [rendered.title, *(html.unescape(p) for p in rendered.parts), rendered.plain or ""]
    return out


@pytest.mark.parametrize("pair_id", IDS)
def test_what_the_message_says(pair_id: str) -> None:
    case = expected_messages.expected(pair_id)
    if not (case.says or case.never_says):
        pytest.skip("no text expectation")
    ctx = _context(case)
    plain = FORMATS["email"](ctx).plain or ""
    for text in case.says:
        assert text in ctx.body_text, f"{case.why}\n{text!r} not in\n{ctx.body_text}"
        assert text in plain, f"{text!r} not in the email's plain part"
    for read in _everything_read(ctx):
        for text in case.never_says:
            assert text not in read, f"{case.why}\n{text!r} in\n{read}"


@pytest.mark.parametrize("pair_id", IDS)
def test_each_site_is_named_in_the_group_of_what_happened_to_it(pair_id: str) -> None:
    case = expected_messages.expected(pair_id)
    if not case.group:
        pytest.skip("no bulk line expected")
    trial = _context(case).trial
    assert trial is not None
    (summary,) = [e.summary for e in trial.entries if isinstance(e, SummaryEntry) and e.family == "locations"]
    for kind, names in case.group.items():
        group = expected_messages.group_of(summary, kind)
        for name in names:
            assert name in group, f"{case.why}\n{name!r} not in the {kind!r} group of\n{summary}"


def test_a_summarising_message_ends_with_the_link_to_the_full_list() -> None:
    case = expected_messages.expected(IDS[0])
    ctx = _context(case)
    assert any(isinstance(e, SummaryEntry) for e in ctx.trial.entries) if ctx.trial else False
    for kind in ("email", "slack", "telegram", "text"):
        rendered = FORMATS[kind](ctx)
        body = (rendered.plain or "") if kind == "email" else "\n".join(rendered.parts)
        last = [line for line in body.splitlines() if line.strip()][-1]
        assert "clinicaltrials.gov/study/NCT04736173?tab=history" in last, (kind, last)
    page = changes_payload(
        Trial("NCT04736173"),
        None,
        real_pairs.run(case.pair).notified,
        version=2,
        detected_at=AT,
        web_base_url="https://trials.example.org/",
    )
    assert page.history_url == "https://trials.example.org/trials/NCT04736173"
