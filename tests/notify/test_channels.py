"""Each channel format as the peer receives it: real SMTP and webhook receivers; Slack and
Telegram through apprise with its HTTP transport patched (their hosts are fixed, and the
tests have no internet), asserting the exact request apprise would send."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest

from tests.support.channels import NOW, SLACK_URL, TELEGRAM_URL, Transport, many_changes, payload, send
from tests.support.peers import SmtpServer, WebhookReceiver
from watcher.config.channels import channel_kind
from watcher.notify.formats import TELEGRAM_LIMIT


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        (SLACK_URL, "slack"),
        ("https://hooks.slack.com/services/T1/B2/C3", "slack"),
        ("mailto://a.org?to=b@c.org", "email"),
        ("mailtos://u:p@smtp.example.org", "email"),
        (TELEGRAM_URL, "telegram"),
        ("json://h:1/x", "json"),
        ("jsons://h/x", "json"),
        ("discord://1/2", "text"),
        ("ntfy://topic", "text"),
    ],
)
def test_the_format_follows_the_apprise_service(url: str, kind: str) -> None:
    assert channel_kind(url) == kind


def test_slack_request_is_compact_mrkdwn() -> None:
    transport = Transport(b"ok")
    with mock.patch("requests.request", transport), mock.patch("apprise.plugins.slack.time", return_value=1.0):
        send(SLACK_URL, payload())
    (call,) = transport.calls
    assert call["method"] == "POST"
    assert call["url"] == "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    assert call["headers"] == {
        "User-Agent": "Apprise",
        "Accept": "application/json",
        "Content-Type": "application/json; charset=utf-8",
    }
    icon = "https://github.com/caronc/apprise/raw/master/apprise/assets/themes/default/apprise-info-72x72.png"
    assert call["json"] == {
        "mrkdwn": True,
        "attachments": [
            {
                "title": "NCT04728893 (Nemtabrutinib CLL): Status changed from RECRUITING to SUSPENDED: "
                "Sponsor decision (+2 more)",
                "text": "*<https://clinicaltrials.gov/study/NCT04728893|NCT04728893>* Nemtabrutinib CLL — "
                "A Study of Nemtabrutinib vs Chemoimmunotherapy in CLL\n"
                ":red_circle: *status.overallStatus*: RECRUITING → SUSPENDED — Status changed from RECRUITING "
                "to SUSPENDED: Sponsor decision\n"
                ":large_orange_circle: *design.enrollmentCount*: 450 → 560 — Enrollment changed from 450 to "
                "560 (+24.4%), ESTIMATED\n"
                ":large_orange_circle: *Site Ruijin Hospital (Shanghai, China)*: (none) → Ruijin Hospital, "
                "Shanghai, China (RECRUITING) — New site: Ruijin Hospital, Shanghai, China (RECRUITING)\n"
                "<https://clinicaltrials.gov/study/NCT04728893?tab=history|Full history>",
                "color": "#3AA3E3",
                "footer_icon": icon,
                "footer": "Apprise",
                "ts": 1.0,
            }
        ],
        "icon_url": icon,
        "channel": "#trials",
    }


def test_telegram_request_is_html() -> None:
    transport = Transport(b'{"ok": true}')
    with mock.patch("requests.post", transport):
        send(TELEGRAM_URL, payload())
    (call,) = transport.calls
    assert call["url"] == "https://api.telegram.org/bot123456789:AAHsecretTokenValue/sendMessage"
    assert call["headers"] == {"User-Agent": "Apprise", "Content-Type": "application/json"}
    title = (
        "<b>NCT04728893 (Nemtabrutinib CLL): Status changed from RECRUITING to SUSPENDED: Sponsor decision "
        "(+2 more)</b>"
    )
    lines = [
        '<b><a href="https://clinicaltrials.gov/study/NCT04728893">NCT04728893</a></b> · Nemtabrutinib CLL — 3 changes',
        "<i>A Study of Nemtabrutinib vs Chemoimmunotherapy in CLL</i>",
        "🔴 <b>status.overallStatus</b>: RECRUITING → SUSPENDED",
        "    <i>Status changed from RECRUITING to SUSPENDED: Sponsor decision</i>",
        "🟠 <b>design.enrollmentCount</b>: 450 → 560",
        "    <i>Enrollment changed from 450 to 560 (+24.4%), ESTIMATED</i>",
        "🟠 <b>Site Ruijin Hospital (Shanghai, China)</b>: (none) → Ruijin Hospital, Shanghai, China (RECRUITING)",
        "    <i>New site: Ruijin Hospital, Shanghai, China (RECRUITING)</i>",
        '<a href="https://clinicaltrials.gov/study/NCT04728893?tab=history">Full history</a>',
    ]
    sent = call["json"]
    assert sent == {
        "chat_id": -1001234567,
        "disable_notification": False,
        "disable_web_page_preview": True,
        "parse_mode": "HTML",
        "text": sent["text"],
    }
    # Line ends and indents are apprise's own business (2.0 keeps ours, 2.3 writes CRLF and strips them).
    assert [line.strip() for line in sent["text"].replace("\r\n", "\n").split("\n") if line.strip()] == [
        title,
        *(line.strip() for line in lines),
    ]


def many_sites(count: int) -> list[dict[str, Any]]:
    return [
        {
            "field": f"locations.site {n}|city {n}||country",
            "change": "added",
            "old": None,
            "new": {
                "facility": f"Hospital number {n} with a long name",
                "city": f"City {n}",
                "country": "Country",
                "status": "RECRUITING",
            },
            "severity": "major",
            "event": {"kind": "site_added", "summary": f"New site: Hospital number {n} with a long name", "data": {}},
        }
        for n in range(count)
    ]


def test_telegram_splits_long_messages_and_cuts_the_rest_with_a_history_link() -> None:
    transport = Transport(b'{"ok": true}')
    with mock.patch("requests.post", transport):
        send(TELEGRAM_URL, payload(changes=many_changes(40)))
    texts = [c["json"]["text"] for c in transport.calls]
    assert len(texts) == 2
    assert all(len(t) <= TELEGRAM_LIMIT for t in texts)
    assert texts[0].endswith("(1/2)") and texts[1].endswith("(2/2)")
    assert sum(t.count("<b>custom.") for t in texts) == 40
    with mock.patch("requests.post", transport):
        transport.calls.clear()
        send(TELEGRAM_URL, payload(changes=many_changes(400)))
    texts = [c["json"]["text"] for c in transport.calls]
    assert len(texts) == 4
    assert all(len(t) <= TELEGRAM_LIMIT for t in texts)
    assert 'more: <a href="https://clinicaltrials.gov/study/NCT04728893?tab=history">full history</a>' in texts[-1]


def test_email_has_subject_html_table_and_our_plain_part(smtp_server: SmtpServer) -> None:
    send(smtp_server.url(), payload())
    (mail,) = smtp_server.messages
    assert mail["Subject"] == (
        "NCT04728893 (Nemtabrutinib CLL): Status changed from RECRUITING to SUSPENDED: Sponsor decision (+2 more)"
    )
    html_part = mail.get_body(preferencelist=("html",))
    plain_part = mail.get_body(preferencelist=("plain",))
    assert html_part is not None and plain_part is not None
    html = html_part.get_content()
    assert "<table" in html and "<th" in html
    assert ">RECRUITING</td>" in html and ">SUSPENDED</td>" in html
    assert 'href="https://clinicaltrials.gov/study/NCT04728893?tab=history"' in html
    assert plain_part.get_content().replace("\r\n", "\n").strip() == PLAIN


PLAIN = """\
NCT04728893 (Nemtabrutinib CLL): 3 changes, version 2
A Study of Nemtabrutinib vs Chemoimmunotherapy in CLL

status.overallStatus: RECRUITING → SUSPENDED
  ↳ critical: Status changed from RECRUITING to SUSPENDED: Sponsor decision
design.enrollmentCount: 450 → 560
  ↳ major: Enrollment changed from 450 to 560 (+24.4%), ESTIMATED
Site Ruijin Hospital (Shanghai, China): (none) → Ruijin Hospital, Shanghai, China (RECRUITING)
  ↳ major: New site: Ruijin Hospital, Shanghai, China (RECRUITING)

Study: https://clinicaltrials.gov/study/NCT04728893
Full history: https://clinicaltrials.gov/study/NCT04728893?tab=history"""


def test_a_late_email_says_it_is_late(smtp_server: SmtpServer) -> None:
    send(smtp_server.url(), payload(), created_at=NOW, now=NOW + timedelta(hours=3, minutes=12))
    plain = smtp_server.messages[0].get_body(preferencelist=("plain",))
    assert plain is not None
    assert plain.get_content().startswith("Delayed delivery: queued 2026-11-22 09:15 UTC, sent 3 h 12 min later.")


def test_webhook_gets_the_versioned_document(webhook: WebhookReceiver) -> None:
    send(webhook.url(), payload())
    (post,) = webhook.requests
    body = post.json()
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Idempotency-Key"] == "trialwatch-42", "a retried message carries the same key"
    assert body["schema"] == "trialwatch.notification" and body["schema_version"] == 1
    assert body["kind"] == "changes" and body["message_id"] == 42
    assert body["trial"] == {
        "nct_id": "NCT04728893",
        "label": "Nemtabrutinib CLL",
        "title": "A Study of Nemtabrutinib vs Chemoimmunotherapy in CLL",
    }
    assert body["links"] == {
        "study": "https://clinicaltrials.gov/study/NCT04728893",
        "history": "https://clinicaltrials.gov/study/NCT04728893?tab=history",
        "compare": None,
    }
    assert body["severity"] == "critical"
    first = body["changes"][0]
    assert first["field"] == "status.overallStatus" and first["change"] == "changed"
    assert (first["old"], first["new"], first["severity"]) == ("RECRUITING", "SUSPENDED", "critical")
    assert first["event"]["kind"] == "status_transition"
    assert [c["severity"] for c in body["changes"]] == ["critical", "major", "major"]
    assert body["changes"][2]["new"]["facility"] == "Ruijin Hospital"
    # apprise's own envelope stays, so any apprise-aware receiver still shows something
    assert body["version"] == "1.0" and body["title"].startswith("NCT04728893 (Nemtabrutinib CLL): ")
    assert "status.overallStatus: RECRUITING → SUSPENDED" in body["message"]


def test_many_sites_in_one_version_read_as_one_line_in_every_human_format() -> None:
    transport = Transport(b'{"ok": true}')
    with mock.patch("requests.post", transport):
        send(TELEGRAM_URL, payload(changes=many_sites(400)))
    (text,) = [c["json"]["text"] for c in transport.calls]
    assert "Sites: 400 added: Hospital number 0 with a long name, City 0; " in text
    assert "…and 340 more" in text, "every added site up to BULK_ADDED_NAMED is named"
    assert len(text.splitlines()) < 10


# -- apprise URLs with a typo --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mailtoo://me:Pa55word@example.org",
            "apprise knows no scheme 'mailtoo'; close ones it knows: mailto:// (E-Mail), mailtos:// (E-Mail)",
        ),
        ("jsons//hooks.example.org/path", "the URL does not start with scheme://; did you mean jsons://… or json://…"),
        ("hooks.example.org/path", "the URL does not start with scheme:// (such as mailto://, slack:// or json://)"),
        (
            "htps://hooks.slack.com/services/T1/B1/secretTokenValue",
            "apprise knows no scheme 'htps'; close ones it knows: https://, http://",
        ),
        (
            "tgram://secretTokenValue",
            "tgram:// is Telegram, but the rest of the URL (tgram://***) does not fit it: "
            "expected tgram://{bot_token}, tgram://{bot_token}/{targets}; "
            "see https://appriseit.com/services/telegram/",
        ),
        (
            "xyzzyq://secretTokenValue",
            "apprise knows no scheme 'xyzzyq'; the services and their schemes: https://appriseit.com/services/",
        ),
    ],
)
def test_a_url_typo_names_the_wrong_part_and_the_close_schemes(url: str, expected: str) -> None:
    from watcher.config.channels import check_channel_options

    problems = dict(
        check_channel_options(
            url=url, digest=None, timezone="UTC", heartbeat=None, title_template=None, body_template=None
        )
    )
    assert problems["url"].startswith(expected), problems["url"]
    assert "Pa55word" not in problems["url"] and "secretTokenValue" not in problems["url"]


def test_the_schemes_come_from_apprises_public_details() -> None:
    import apprise

    from watcher.config.channels import apprise_schemes

    schemes = apprise_schemes()
    assert {"mailto", "mailtos", "slack", "json", "jsons", "tgram"} <= set(schemes)
    assert len(schemes) >= len(apprise.Apprise().details()["schemas"])
    assert schemes["slack"].name == "Slack" and schemes["slack"].templates
