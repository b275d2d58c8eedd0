"""Digests at cron times in a channel's timezone, and heartbeats, delivered to a real webhook."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.outbox import Clock, setup
from tests.support.peers import WebhookReceiver
from tests.support.workspace import Workspace
from watcher.config.channels import check_channel_options, next_fire
from watcher.messages import AlertPayload, NewMessage, decode_payload
from watcher.notify.payloads import notify_tick
from watcher.store.meta import LAST_SUCCESS

# 06:30 UTC on a Monday in November is 07:30 in Berlin (UTC+1).
T0 = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)


def change_set(nct_id: str, label: str, *changes: tuple[str, str, str, str]) -> NewMessage:
    """A change set of the shape the outbox has always stored."""
    return NewMessage(
        "hook",
        decode_payload(
            {
                "schema": 1,
                "type": "changes",
                "nct_id": nct_id,
                "label": label,
                "title": f"Title of {nct_id}",
                "version": 2,
                "detected_at": T0.isoformat(),
                "changes": [
                    {"field": f, "change": "changed", "old": o, "new": n, "severity": s, "event": None}
                    for f, o, n, s in changes
                ],
            }
        ),
    )


def test_cron_times_are_read_in_the_channel_timezone() -> None:
    assert next_fire("0 8 * * 1-5", "Europe/Berlin", T0) == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 6, 5, 30, tzinfo=UTC)
    assert next_fire("0 8 * * 1-5", "Europe/Berlin", summer) == datetime(2026, 7, 6, 6, 0, tzinfo=UTC)
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert next_fire("0 8 * * 1-5", "Europe/Berlin", friday_evening) == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def test_cron_times_on_dst_days_fire_once_after_a_gap_and_twice_in_a_fold() -> None:
    # Berlin springs forward 02:00 → 03:00 on 2026-03-29: 02:30 does not exist and fires at 03:00 (01:00 UTC) once.
    spring = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
    assert next_fire("30 2 * * *", "Europe/Berlin", spring) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert next_fire("*/20 2 * * *", "Europe/Berlin", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == datetime(
        2026, 3, 30, 0, 0, tzinfo=UTC
    )
    assert next_fire("0 0 * * *", "Europe/Berlin", datetime(2026, 3, 28, 23, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 22, 0, tzinfo=UTC
    )
    # It falls back 03:00 → 02:00 on 2026-10-25: 02:30 happens twice, and fires both times.
    fall = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    first = next_fire("30 2 * * *", "Europe/Berlin", fall)
    second = next_fire("30 2 * * *", "Europe/Berlin", first)
    assert (first, second) == (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert next_fire("30 2 * * *", "Europe/Berlin", second) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_cron_fields_mean_what_they_mean_in_crontab() -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    sunday_noon = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert next_fire("0 12 * * 0", "UTC", saturday) == sunday_noon  # 0 is Sunday, not Monday
    assert next_fire("0 12 * * 7", "UTC", saturday) == sunday_noon
    assert next_fire("0 12 * * sun", "UTC", saturday) == sunday_noon
    assert next_fire("0 12 * * fri-mon", "UTC", saturday) == sunday_noon
    # A restricted day of month and weekday: either one (the 1st, or any Monday).
    assert next_fire("0 12 1 * 1", "UTC", saturday) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert next_fire("0 12 1 * 1", "UTC", datetime(2026, 11, 30, 13, 0, tzinfo=UTC)) == datetime(
        2026, 12, 1, 12, 0, tzinfo=UTC
    )
    assert next_fire("@daily", "UTC", saturday) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert next_fire("0 12 L * *", "UTC", saturday) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_invalid_cron_expressions_are_named_in_one_message() -> None:
    def problems(digest: str) -> list[tuple[str, str]]:
        return list(
            check_channel_options(
                url="", digest=digest, timezone="Europe/Berlin", heartbeat=None, title_template=None, body_template=None
            )
        )

    for good in ("0 8 * * 1-5", "*/15 * * * *", "0 8 1,15 * mon-fri", "@weekly", "0 22-2 * * *", "0 8 ? * *"):
        assert problems(good) == [], good
    for bad in (
        "every morning",
        "0 8 * *",
        "60 8 * * *",
        "0 24 * * *",
        "0 8 0 * *",
        "0 8 * 13 *",
        "0 8 * * 8",
        "*/0 * * * *",
        "0 8 * * funday",
        "@reboot",
        "0 8-* * * *",
    ):
        assert problems(bad) == [
            ("digest", f"{bad!r} is neither `immediate` nor a cron expression such as '0 8 * * 1-5'")
        ], bad


def test_a_digest_combines_all_trials_grouped_most_severe_first(workspace: Workspace, webhook: WebhookReceiver) -> None:
    config, store = setup(
        workspace, {"hook": {"url": webhook.url(), "digest": "0 8 * * 1-5", "timezone": "Europe/Berlin"}}
    )
    clock = Clock(T0)
    notify_tick(config, store, now=clock)  # the first tick starts the digest clock
    store.outbox.enqueue(
        [
            change_set("NCT00000001", "quiet", ("conditions.keywords", "a", "b", "minor")),
            change_set(
                "NCT00000002",
                "stopped",
                ("design.phases", "PHASE2", "PHASE3", "major"),
                ("status.overallStatus", "RECRUITING", "TERMINATED", "critical"),
            ),
            change_set("NCT00000001", "quiet", ("design.enrollmentCount", 10, 20, "major")),
        ],
        T0,
    )
    store.outbox.enqueue([NewMessage("hook", AlertPayload(subject="API down", text="x"))], T0)
    clock.advance(minutes=20)
    notify_tick(config, store, now=clock)
    assert [r.json()["kind"] for r in webhook.requests] == ["alert"], "alerts never wait for the digest"
    assert store.outbox.counts_by_channel()["hook"] == {"pending": 3, "sent": 1}

    clock.advance(minutes=10)  # 07:00 UTC = 08:00 Berlin
    notify_tick(config, store, now=clock)
    digest = webhook.requests[-1].json()
    assert digest["kind"] == "digest"
    assert digest["title"] == "TrialWatch digest: 4 changes in 2 trials"
    assert digest["since"] == T0.isoformat() and digest["until"] == clock().isoformat()
    assert digest["severity"] == "critical"
    assert [t["trial"]["nct_id"] for t in digest["trials"]] == ["NCT00000002", "NCT00000001"]
    assert [[c["field"] for c in t["changes"]] for t in digest["trials"]] == [
        ["status.overallStatus", "design.phases"],
        ["design.enrollmentCount", "conditions.keywords"],
    ]
    message = digest["message"]
    assert message.index("NCT00000002 (stopped)") < message.index("NCT00000001 (quiet)")
    assert store.outbox.counts_by_channel()["hook"] == {"digested": 3, "sent": 2}

    clock.advance(hours=1)
    notify_tick(config, store, now=clock)
    assert len(webhook.requests) == 2, "nothing new: no empty digest"


def test_a_service_down_over_several_digest_times_sends_one_catch_up_digest(
    workspace: Workspace,
    webhook: WebhookReceiver,
) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url(), "digest": "0 * * * *"}})
    clock = Clock(T0)
    notify_tick(config, store, now=clock)
    store.outbox.enqueue([change_set("NCT00000001", "a", ("status.overallStatus", "A", "B", "critical"))], T0)
    clock.advance(hours=5)
    notify_tick(config, store, now=clock)
    notify_tick(config, store, now=clock)
    assert [r.json()["kind"] for r in webhook.requests] == ["digest"]


def test_heartbeats_say_what_is_watched_and_when(workspace: Workspace, webhook: WebhookReceiver) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url(), "heartbeat": "1d"}})
    store.meta.set(LAST_SUCCESS, datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    clock = Clock(T0)
    notify_tick(config, store, now=clock, next_poll=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    (beat,) = [r.json() for r in webhook.requests]
    assert beat["kind"] == "heartbeat"
    assert beat["text"] == (
        "Watching 1 trial; last successful poll at 2026-11-23 06:00 UTC; next at 2026-11-23 12:00 UTC."
    )
    assert (beat["trials_watched"], beat["last_poll"], beat["next_poll"]) == (
        1,
        "2026-11-23T06:00:00+00:00",
        "2026-11-23T12:00:00+00:00",
    )
    clock.advance(hours=23)
    notify_tick(config, store, now=clock)
    assert len(webhook.requests) == 1
    clock.advance(hours=1)
    notify_tick(config, store, now=clock)
    assert len(webhook.requests) == 2


def test_delivery_options_are_validated_with_file_and_line(workspace: Workspace) -> None:
    workspace.write(
        channels={
            "hook": {
                "url": "json://localhost/x",
                "digest": "every morning",
                "timezone": "Mars/Base",
                "heartbeat": "10s",
                "body_template": "{% if %}",
            },
            "odd": {"url": "nosuchservice://x/y/z-secret-token"},
            "typo": {"url": "slak://T1JJ3T3L2/A1BRTD4JD/secretTokenValue", "timeout": "0s"},
        }
    )
    result = workspace.cli("check-config")
    assert result.code == 2
    settings = str(workspace.settings)
    lines = result.err.splitlines()
    assert (
        f"  {settings}:14: channels.hook.digest: 'every morning' is neither `immediate` nor a cron expression "
        "such as '0 8 * * 1-5'" in lines
    )
    assert (
        f"  {settings}:15: channels.hook.timezone: 'Mars/Base' is not an IANA timezone such as UTC or "
        "Europe/Berlin" in lines
    )
    assert f"  {settings}:16: channels.hook.heartbeat: must be at least 1m" in lines
    assert any(line.startswith(f"  {settings}:17: channels.hook.body_template: template error") for line in lines)
    assert (
        f"  {settings}:19: channels.odd.url: apprise knows no scheme 'nosuchservice'; the services and their "
        "schemes: https://appriseit.com/services/" in lines
    )
    assert (
        f"  {settings}:21: channels.typo.url: apprise knows no scheme 'slak'; close ones it knows: slack:// "
        "(Slack)" in " ".join(lines)
    )
    assert (
        f"  {settings}:22: channels.typo.timeout: must be between 1s and 10m (it bounds each network wait of "
        "one send)" in lines
    )
    assert "z-secret-token" not in result.err and "secretTokenValue" not in result.err


def test_heartbeats_do_not_pile_up_while_the_channel_is_down(workspace: Workspace, webhook: WebhookReceiver) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url(), "heartbeat": "1d"}})
    clock = Clock(T0)
    webhook.fail_next(10_000, 502)
    for _ in range(4):
        notify_tick(config, store, now=clock)
        clock.advance(days=1)
    assert store.outbox.counts() == {"pending": 1}
    webhook._failures.clear()
    clock.advance(hours=2)
    notify_tick(config, store, now=clock)
    assert [r.json()["kind"] for r in webhook.requests] == ["heartbeat"]


def test_a_heartbeat_counts_only_watched_trials_as_failing(workspace: Workspace, webhook: WebhookReceiver) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url(), "heartbeat": "1d"}})
    watched = config.watchlist.trials[0].nct_id
    for nct_id in (watched, "NCT03418623", "NCT06171568"):  # the last two were removed from the watchlist
        store.trials.record_failure(nct_id, "HTTP 503")
    notify_tick(config, store, now=Clock(T0), next_poll=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    (beat,) = [r.json() for r in webhook.requests]
    assert beat["text"].endswith(" 1 trial is failing to update.")


def test_minor_only_change_sets_wait_for_the_daily_digest_and_the_rest_go_at_once(
    workspace: Workspace, webhook: WebhookReceiver
) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url(), "minor": "0 8 * * *"}})
    clock = Clock(T0)
    notify_tick(config, store, now=clock)  # the first tick starts the digest clock
    geo = ("locations.x|y||z.geoPoint.lat", "32.99472", "33.00524", "minor")
    status = ("status.overallStatus", "RECRUITING", "SUSPENDED", "critical")
    minor = change_set("NCT00000001", "quiet", geo)
    mixed = change_set("NCT00000002", "stopped", status, geo)
    store.outbox.enqueue([NewMessage("hook", minor.payload, held=True), mixed], T0)
    clock.advance(minutes=5)
    notify_tick(config, store, now=clock)
    sent = [r.json() for r in webhook.requests]
    assert [(m["kind"], m["trial"]["nct_id"]) for m in sent] == [("changes", "NCT00000002")]
    assert len(sent[0]["changes"]) == 2, "a set with a critical change goes at once, in full"
    assert store.outbox.counts_by_channel()["hook"] == {"pending": 1, "sent": 1}
    from watcher.notify.payloads import queued_note

    (queued,) = store.outbox.queued()
    assert "minor-only change sets wait for the channel's digest at 2026-11-23 08:00" in queued_note(
        queued, config.settings, store
    )

    clock.advance(hours=2)  # 08:30 UTC
    notify_tick(config, store, now=clock)
    digest = webhook.requests[-1].json()
    assert digest["kind"] == "digest"
    assert [t["trial"]["nct_id"] for t in digest["trials"]] == ["NCT00000001"]
    assert store.outbox.counts_by_channel()["hook"] == {"digested": 1, "sent": 2}


def test_by_default_human_channels_hold_minor_only_sets_and_webhooks_do_not(workspace: Workspace) -> None:
    from watcher.models import Change
    from watcher.notify.routing import held_for_digest

    channels = {
        "mail": {"url": "mailto://user:pw@example.org"},
        "slack": {"url": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#trials"},
        "tg": {"url": "tgram://123456789:abcdefg_hijklmnop/12315544"},
        "hook": {"url": "json://localhost/x"},
        "loud": {"url": "mailto://user:pw@example.org", "minor": "immediate"},
        "daily": {"url": "mailto://user:pw@example.org", "digest": "0 8 * * *"},
    }
    config, _ = setup(workspace, channels)
    minor = [Change("locations.x|y||z.geoPoint.lat", "changed", 1.0, 2.0, "minor")]
    major = [*minor, Change("status.overallStatus", "changed", "A", "B", "major")]
    assert held_for_digest(dict.fromkeys(channels, minor), config.settings) == {"mail", "slack", "tg"}
    assert held_for_digest(dict.fromkeys(channels, major), config.settings) == set()
