"""The pure formats: context, cutting, splitting, severity order (no I/O, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from tests.support.channels import TELEGRAM_URL, Transport, many_changes, payload
from tests.support.outbox import Clock, setup
from tests.support.workspace import Workspace
from watcher.messages import NewMessage, decode_payload
from watcher.notify.formats import (
    SLACK_LIMIT,
    TELEGRAM_LIMIT,
    Context,
    Delivery,
    context,
    email,
    slack,
    split_lines,
    telegram,
)
from watcher.notify.payloads import notify_tick
from watcher.store.meta import PARTS_SENT, PartsSent

NOW = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)


def ctx(data: dict[str, Any], *, late: timedelta = timedelta()) -> Context:
    return context(decode_payload(data), Delivery("ch", 1, NOW, NOW + late))


def test_changes_are_shown_most_severe_first_and_the_title_names_the_most_important() -> None:
    data = payload()
    data["changes"] = list(reversed(data["changes"]))
    view = ctx(data)
    assert [c.severity for c in view.changes] == ["critical", "major", "major"]
    assert view.title.startswith("NCT04728893 (Nemtabrutinib CLL): Status changed from RECRUITING to SUSPENDED")
    assert view.title.endswith("(+2 more)")


def test_a_change_without_event_is_headlined_by_its_line() -> None:
    data = payload(
        changes=[
            {
                "field": "conditions.keywords",
                "change": "added",
                "old": None,
                "new": ["CLL"],
                "severity": "minor",
                "event": None,
            }
        ]
    )
    assert ctx(data).title == "NCT04728893 (Nemtabrutinib CLL): conditions.keywords: (none) → CLL"


def test_delay_note_only_when_late() -> None:
    assert ctx(payload(), late=timedelta(minutes=14)).delay is None
    assert ctx(payload(), late=timedelta(days=1, hours=2)).delay == (
        "Delayed delivery: queued 2026-11-22 09:15 UTC, sent 1 d 2 h later."
    )


def test_long_slack_messages_are_cut_with_a_link_to_the_full_history() -> None:
    rendered = slack(ctx(payload(changes=many_changes(200))))
    (body,) = rendered.parts
    assert len(body) <= SLACK_LIMIT
    assert body.rstrip().endswith("[Full history](https://clinicaltrials.gov/study/NCT04728893?tab=history)")
    assert "more: [full history](https://clinicaltrials.gov/study/NCT04728893?tab=history)" in body


def test_a_digest_cut_still_points_to_every_trial() -> None:
    trials = [
        {**payload(changes=many_changes(60)), "nct_id": f"NCT0000000{n}", "url": None, "history_url": None}
        for n in range(3)
    ]
    view = ctx({"type": "digest", "since": "s", "until": "u", "trials": trials})
    (body,) = slack(view).parts
    for n in range(3):
        assert f"NCT0000000{n}?tab=history" in body


def test_email_lists_at_most_200_changes_then_links_the_history() -> None:
    rendered = email(ctx(payload(changes=many_changes(250))))
    assert rendered.parts[0].count("<tr>") == 1 + 200
    assert (
        '… and 50 more changes: <a href="https://clinicaltrials.gov/study/NCT04728893?tab=history">'
        in (rendered.parts[0])
    )


def test_telegram_parts_never_exceed_the_limit() -> None:
    parts = telegram(ctx(payload(changes=many_changes(120)))).parts
    assert len(parts) > 1 and all(len(p) <= TELEGRAM_LIMIT for p in parts)


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r"), max_size=300), max_size=60),
    st.integers(min_value=50, max_value=1000),
)
def test_split_lines_keeps_every_line_whole_within_the_limit(lines: list[str], limit: int) -> None:
    chunks = split_lines(lines, limit)
    assert all(len(c) <= limit for c in chunks)
    shortened = [line if len(line) <= limit else line[: limit - 1] + "…" for line in lines]
    assert [x.strip() for x in "\n".join(chunks).split("\n") if x.strip()] == [
        x.strip() for x in shortened if x.strip()
    ]


def test_a_split_message_that_fails_halfway_resends_only_the_rest(workspace: Workspace) -> None:
    """Accepted Telegram parts are remembered; the retry, an hour later, sends exactly the part
    still owed, rendered as at the first attempt (no delay note shifting the split)."""
    config, store = setup(workspace, {"bot": {"url": TELEGRAM_URL}})
    store.outbox.enqueue([NewMessage("bot", decode_payload(payload(changes=many_changes(40))))], NOW)
    clock = Clock(NOW)
    answers = iter([200, 500, 200])
    transport = Transport(b"")

    def post(*args: Any, **kwargs: Any) -> Any:
        transport(*args, **kwargs)
        return mock.Mock(status_code=next(answers), content=b'{"ok": true}')

    with mock.patch("requests.post", side_effect=post):
        (first,) = notify_tick(config, store, now=clock)
        assert not first.accepted and "error=500" in (first.error or "")
        assert store.meta.get(PARTS_SENT.of(1)) == PartsSent(1, NOW)
        clock.advance(hours=1)
        (second,) = notify_tick(config, store, now=clock)
    assert second.accepted
    texts = [c["json"]["text"] for c in transport.calls]
    assert [t[-5:] for t in texts] == ["(1/2)", "(2/2)", "(2/2)"]
    assert texts[1] == texts[2]
    assert store.meta.get(PARTS_SENT.of(1)) is None and store.outbox.counts() == {"sent": 1}
