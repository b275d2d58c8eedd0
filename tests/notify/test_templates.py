"""User templates per channel, and `trialwatch notify-test` against real peers."""

from __future__ import annotations

from datetime import UTC, datetime

from structlog.testing import capture_logs

from tests.support.channels import payload, send
from tests.support.outbox import Clock, setup
from tests.support.peers import SmtpServer, WebhookReceiver, free_port
from tests.support.workspace import Workspace
from watcher.config import ChannelSettings
from watcher.messages import AlertPayload, NewMessage, decode_payload
from watcher.notify.delivery import render
from watcher.notify.formats import Delivery
from watcher.notify.payloads import notify_tick

NOW = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)

TITLE = "{{ trial.nct_id }} {{ severity | upper }}: {{ headline }}"
BODY = """\
{% for c in changes %}
{{ c.severity }} | {{ c.field }} | {{ c.old_text }} => {{ c.new_text }}{% if c.summary %} ({{ c.summary }}){% endif +%}
{% endfor %}
{{ count }} change(s); history: {{ trial.history_url }}"""


def test_templates_override_title_and_body(webhook: WebhookReceiver) -> None:
    channel = ChannelSettings(name="hook", url=webhook.url(), title_template=TITLE, body_template=BODY)
    rendered = render(decode_payload(payload()), channel, Delivery("hook", 1, NOW, NOW))
    assert rendered.title == "NCT04728893 CRITICAL: Status changed from RECRUITING to SUSPENDED: Sponsor decision"
    assert rendered.parts == (
        """\
critical | status.overallStatus | RECRUITING => SUSPENDED (Status changed from RECRUITING to SUSPENDED: \
Sponsor decision)
major | design.enrollmentCount | 450 => 560 (Enrollment changed from 450 to 560 (+24.4%), ESTIMATED)
major | locations.ruijin hospital|shanghai||china | (none) => Ruijin Hospital, Shanghai, China (RECRUITING) (New site: \
Ruijin Hospital, Shanghai, China (RECRUITING))
3 change(s); history: https://clinicaltrials.gov/study/NCT04728893?tab=history""",
    )
    assert rendered.document is not None and rendered.document["kind"] == "changes", "the JSON document stays"


def test_html_channels_escape_template_values(smtp_server: SmtpServer) -> None:
    channel = ChannelSettings(name="mail", url=smtp_server.url(), body_template="<p>{{ trial.title }}</p>")
    rendered = render(decode_payload(payload(title="Drug <X> & placebo")), channel, Delivery("mail", 1, NOW, NOW))
    assert rendered.parts == ("<p>Drug &lt;X&gt; &amp; placebo</p>",)


def test_a_template_that_fails_falls_back_to_the_built_in_format(
    workspace: Workspace, webhook: WebhookReceiver
) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url(), "title_template": "{{ no_such_variable }}"}})
    store.outbox.enqueue([NewMessage("hook", decode_payload(payload()))], NOW)
    with capture_logs() as logs:
        notify_result = notify_tick(config, store, now=Clock(NOW))
    assert [o.accepted for o in notify_result] == [True]
    assert webhook.requests[0].json()["title"].startswith("NCT04728893 (Nemtabrutinib CLL): Status changed")
    (failed,) = [e for e in logs if e["event"] == "notify.template_failed"]
    assert failed["channel"] == "hook" and "no_such_variable" in failed["error"]


def test_digest_templates_see_trials(webhook: WebhookReceiver) -> None:
    body = "{% for t in trials %}{{ t.nct_id }}={{ t.count }};{% endfor %}"
    channel = ChannelSettings(name="hook", url=webhook.url(), body_template=body)
    digest = {"type": "digest", "since": "a", "until": "b", "trials": [payload(), {**payload(), "nct_id": "NCT1"}]}
    send(webhook.url(), digest)
    assert render(decode_payload(digest), channel, Delivery("hook", 1, NOW, NOW)).parts == ("NCT04728893=3;NCT1=3;",)


def test_notify_test_reports_each_channel(
    workspace: Workspace, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    dead = f"json://127.0.0.1:{free_port()}/hook-secret-path"
    workspace.write(
        channels={"mail": {"url": smtp_server.url()}, "hook": {"url": webhook.url()}, "dead": {"url": dead}}
    )
    result = workspace.cli("notify-test")
    assert result.code == 1
    assert result.out.splitlines() == [
        "mail: accepted",
        "hook: accepted",
        "dead: FAILED: channel 'dead': cannot reach the webhook at 127.0.0.1: ConnectError",
    ]
    assert "hook-secret-path" not in result.out + result.err
    (mail,) = smtp_server.messages
    assert mail["Subject"].startswith("[test] NCT04728893 (notify-test sample): ")
    post = webhook.requests[0].json()
    assert post["test"] is True and post["kind"] == "changes"

    only = workspace.cli("notify-test", "--channel", "hook")
    assert (only.code, only.out) == (0, "hook: accepted\n")
    assert len(webhook.requests) == 2 and len(smtp_server.messages) == 1

    unknown = workspace.cli("notify-test", "--channel", "nope")
    assert unknown.code == 2 and "unknown channel 'nope' (known: mail, hook, dead)" in unknown.err


def test_notify_test_without_channels_is_a_usage_error(workspace: Workspace) -> None:
    result = workspace.cli("notify-test")
    assert result.code == 2 and "no channels are configured" in result.err


def test_notify_retry_requeues_parked_messages(workspace: Workspace, webhook: WebhookReceiver) -> None:
    _config, store = setup(workspace, {"hook": {"url": webhook.url()}})
    store.outbox.enqueue([NewMessage("hook", AlertPayload(subject="s", text="t"))], NOW)
    claim = store.outbox.claim_next(NOW, lease_until=NOW)
    assert claim is not None
    store.outbox.finish_failed(claim[0].id, "revoked", retry_at=None)
    result = workspace.cli("notify-retry", "--channel", "hook")
    assert result.code == 0 and result.out.startswith("1 parked message queued again")
    assert store.outbox.counts() == {"pending": 1}
