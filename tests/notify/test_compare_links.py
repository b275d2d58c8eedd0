"""The link a summarising message ends with: the web view's trial page when `web.base_url` is set,
else ClinicalTrials.gov's comparison of the two versions when their numbers are known, else the
trial's record history; in every format (email text and HTML, Slack, Telegram, plain text, webhook)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from tests.support import real_pairs
from watcher.detect.record import title_of
from watcher.messages import ChangesPayload, decode_payload, encode_payload
from watcher.models import Trial, compare_url
from watcher.notify.digest import digest_payload
from watcher.notify.formats import FORMATS, Context, Delivery, context, document
from watcher.notify.payloads import changes_payload

AT = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
NCT = "NCT04736173"
PAIR = "NCT04736173:2025-12-15_2026-03-06->2026-03-09_2026-03-09"  # 48 site changes: one summary line
# ClinicalTrials.gov's Record History "Compare" of its versions 7 and 8 (numbered from 1 on the site).
COMPARE = f"https://clinicaltrials.gov/study/{NCT}?tab=history&a=7&b=8#version-content-panel"
HISTORY = f"https://clinicaltrials.gov/study/{NCT}?tab=history"
PAGE = f"https://trials.example.org/trials/{NCT}"


def _payload(**kwargs: object) -> ChangesPayload:
    pair = next(p for p in real_pairs.pairs() if p.id == PAIR)
    notified = real_pairs.run(pair).notified
    return changes_payload(Trial(NCT), title_of(pair.new), notified, version=2, detected_at=AT, **kwargs)  # type: ignore[arg-type]


def _context(payload: ChangesPayload | object) -> Context:
    return context(payload, Delivery(channel="c", message_id=None, created_at=AT, now=AT))  # type: ignore[arg-type]


def _last_lines(ctx: Context) -> dict[str, str]:
    """The last line people read in each human format (the email's plain part and its HTML as text)."""
    out = {}
    for kind in ("email", "slack", "telegram", "text"):
        rendered = FORMATS[kind](ctx)
        bodies = [rendered.plain or ""] if kind == "email" else list(rendered.parts)
        for n, body in enumerate(bodies):
            lines = [line for line in body.splitlines() if line.strip()]
            out[f"{kind}{n}"] = html.unescape(lines[-1]) if kind == "telegram" else lines[-1]
        if kind == "email":
            out["email html"] = html.unescape(re.findall(r'href="([^"]+)"', rendered.parts[0])[-1])
    return out


def test_the_registry_compare_url_counts_versions_from_one() -> None:
    assert compare_url(NCT, 6, 7) == COMPARE


def test_every_format_ends_with_the_comparison_of_the_two_versions() -> None:
    ctx = _context(_payload(ctgov_versions=(6, 7)))
    for kind, line in _last_lines(ctx).items():
        assert COMPARE in line, (kind, line)
        assert kind == "email html" or "Compare the two versions" in line, (kind, line)  # not "Full history"
    email_html = FORMATS["email"](ctx).parts[0]
    assert f'href="{html.escape(COMPARE)}">Compare the two versions</a>' in email_html
    doc = document(ctx)
    assert (doc.links.history, doc.links.compare) == (COMPARE, COMPARE)  # type: ignore[union-attr]


def test_the_web_view_page_wins_and_the_document_keeps_the_comparison() -> None:
    ctx = _context(_payload(ctgov_versions=(6, 7), web_base_url="https://trials.example.org/"))
    for kind, line in _last_lines(ctx).items():
        assert PAGE in line and COMPARE not in line, (kind, line)
        assert kind == "email html" or "Full history" in line, (kind, line)
    doc = document(ctx)
    assert (doc.links.history, doc.links.compare) == (PAGE, COMPARE)  # type: ignore[union-attr]


def test_unknown_numbers_fall_back_to_the_record_history() -> None:
    ctx = _context(_payload())
    for kind, line in _last_lines(ctx).items():
        assert HISTORY in line and "&a=" not in line, (kind, line)
        assert kind == "email html" or "Full history" in line, (kind, line)
    doc = document(ctx)
    assert (doc.links.history, doc.links.compare) == (HISTORY, None)  # type: ignore[union-attr]


def test_a_payload_stored_before_the_numbers_reads_and_writes_back_unchanged() -> None:
    stored = encode_payload(_payload())
    assert "ctgov_versions" not in stored
    assert encode_payload(decode_payload(stored)) == stored
    first_release = {k: v for k, v in stored.items() if k != "history_url"}
    payload = decode_payload(first_release)
    assert isinstance(payload, ChangesPayload) and payload.compared is None
    assert _context(payload).trial.history_url == HISTORY  # type: ignore[union-attr]
    known = encode_payload(_payload(ctgov_versions=(6, 7)))
    assert list(known["ctgov_versions"]) == [6, 7]
    again = decode_payload(known)
    assert isinstance(again, ChangesPayload) and again.compared == (6, 7)


def test_a_digest_links_to_the_comparison_of_its_oldest_and_newest_versions() -> None:
    first, second = _payload(ctgov_versions=(6, 7)), _payload(ctgov_versions=(7, 9))
    [trial] = digest_payload([first, second], since=AT.isoformat(), until=AT.isoformat()).trials
    assert trial.compared == (6, 9)
    assert trial.history_url == compare_url(NCT, 6, 9)
    [unknown] = digest_payload([first, _payload()], since=AT.isoformat(), until=AT.isoformat()).trials
    assert (unknown.history_url, unknown.compared) == (HISTORY, None)
    paged = _payload(ctgov_versions=(7, 9), web_base_url="https://trials.example.org")
    [web] = digest_payload([first, paged], since=AT.isoformat(), until=AT.isoformat()).trials
    assert web.history_url == PAGE
