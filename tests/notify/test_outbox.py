"""The durable outbox against real peers: outages, order, parking, claims and leases."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from tests.support.outbox import T0, Clock, setup
from tests.support.peers import SmtpServer, WebhookReceiver, wait_until
from tests.support.workspace import Workspace
from watcher.messages import AlertPayload, NewMessage
from watcher.notify.payloads import notify_tick, sample_payload
from watcher.store import Store
from watcher.store.meta import OUTBOX_CLAIM


def changes(nct_id: str, n: int) -> NewMessage:
    payload = msgspec.structs.replace(
        sample_payload(T0),
        test=msgspec.UNSET,
        nct_id=nct_id,
        label=f"message {n}",
        url=f"https://clinicaltrials.gov/study/{nct_id}",
    )
    return NewMessage("hook", payload)


def alert(channel: str, subject: str = "s", nct_id: str | None = None) -> NewMessage:
    return NewMessage(channel, AlertPayload(subject=subject, text="t", nct_id=nct_id))


def test_a_channel_down_for_hours_gets_everything_in_order_with_a_delay_note(
    workspace: Workspace,
    webhook: WebhookReceiver,
    smtp_server: SmtpServer,
) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url()}, "mail": {"url": smtp_server.url()}})
    clock = Clock()
    store.outbox.enqueue([changes("NCT04728893", 1), changes("NCT03418623", 2), changes("NCT06171568", 3)], T0)
    store.outbox.enqueue([alert("mail")], T0)
    webhook.fail_next(10_000, 503)
    with capture_logs() as logs:
        while clock.at < T0 + timedelta(hours=3):
            notify_tick(config, store, now=clock)
            clock.advance(minutes=10)
    assert webhook.requests == []
    subjects = [str(m["Subject"]) for m in smtp_server.messages]
    assert subjects[0] == "s", "the dead webhook never held back the email channel"
    assert subjects[1:] == ["TrialWatch: channel 'hook' failing for 30 min"], "said once on the healthy channel"
    assert store.outbox.counts() == {"pending": 3, "sent": 2}
    failed = [e for e in logs if e["event"] == "notify.failed"]
    assert failed and all(e["channel"] == "hook" for e in failed)
    assert {e["message_id"] for e in failed} == {1}, "only the head of the queue is tried during an outage"

    webhook._failures.clear()
    while store.outbox.counts().get("pending"):
        notify_tick(config, store, now=clock)
        clock.advance(minutes=10)
    bodies = [r.json() for r in webhook.requests]
    assert [b["trial"]["label"] for b in bodies] == ["message 1", "message 2", "message 3"]
    assert all(b["delayed_seconds"] >= 3 * 3600 for b in bodies)
    assert bodies[0]["message"].startswith("Delayed delivery: queued 2026-11-22 09:00 UTC, sent 3 h")
    notify_tick(config, store, now=clock)
    assert [str(m["Subject"]) for m in smtp_server.messages][2:] == ["TrialWatch: channel 'hook' recovered"]
    assert store.outbox.counts() == {"sent": 6}


def test_a_message_that_keeps_failing_is_parked_logged_and_stops_blocking(
    workspace: Workspace,
    webhook: WebhookReceiver,
) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url()}}, "notify:\n  max_attempts: 3\n")
    clock = Clock()
    store.outbox.enqueue([changes("NCT04728893", 1), changes("NCT03418623", 2)], T0)
    webhook.fail_next(3, 503)  # a refusal retrying may cure: parked after max_attempts
    with capture_logs() as logs:
        for _ in range(6):
            notify_tick(config, store, now=clock)
            clock.advance(hours=1)
    (parked,) = store.outbox.messages(status="parked")
    assert (parked.id, parked.attempts) == (1, 3)
    assert "error=503" in (parked.last_error or "")
    assert [e for e in logs if e["event"] == "notify.parked"] == [
        {
            "event": "notify.parked",
            "log_level": "error",
            "channel": "hook",
            "message_id": 1,
            "nct_id": "NCT04728893",
            "kind": "changes",
            "attempt": 3,
            "attempts": 3,
            "error": parked.last_error,
            "reason": "attempts",
        }
    ]
    assert [r.json()["trial"]["label"] for r in webhook.requests] == ["message 2"]
    assert store.outbox.counts() == {"parked": 1, "sent": 1}
    assert store.outbox.counts_by_channel() == {"hook": {"parked": 1, "sent": 1}}

    assert store.outbox.requeue_parked(clock()) == 1
    notify_tick(config, store, now=clock)
    assert [r.json()["trial"]["label"] for r in webhook.requests] == ["message 2", "message 1"]


def test_a_removed_channel_parks_its_messages_at_once(workspace: Workspace, webhook: WebhookReceiver) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url()}})
    store.outbox.enqueue([alert("gone")], T0)
    (outcome,) = notify_tick(config, store, now=Clock())
    assert outcome.parked and outcome.error == "channel 'gone' is no longer configured"


def test_a_message_that_cannot_be_rendered_is_parked_at_once_and_its_channel_moves_on(
    workspace: Workspace,
    webhook: WebhookReceiver,
) -> None:
    import sqlalchemy

    config, store = setup(workspace, {"hook": {"url": webhook.url()}})
    store.outbox.enqueue([changes("NCT04728893", 1), changes("NCT03418623", 2)], T0)
    poison = {**store.outbox.messages()[0].payload, "changes": "not a list of changes"}  # a row damaged by hand
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE outbox SET payload = :p WHERE id = 1"), {"p": json.dumps(poison)})
    with capture_logs() as logs:
        outcomes = notify_tick(config, store, now=Clock())
    assert [(o.accepted, o.parked) for o in outcomes] == [(False, True), (True, False)]
    (parked,) = store.outbox.messages(status="parked")
    assert parked.attempts == 1
    assert parked.last_error == (
        "cannot be rendered: PayloadError: payload cannot be read: Expected `array`, got `str` - at `$.changes`"
    ), "the row says why, naming the field"
    (event,) = [e for e in logs if e["event"] == "notify.parked"]
    assert event["reason"] == "unrenderable" and event["exc_info"] is True, "the log has the traceback"
    assert [r.json()["trial"]["label"] for r in webhook.requests] == ["message 2"]


def test_claims_are_exclusive_and_a_dead_claim_is_taken_over_after_its_lease(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'tw.sqlite'}"
    with Store(url) as one, Store(url) as two:
        one.outbox.enqueue(
            [
                changes("NCT04728893", 1),
                changes("NCT03418623", 2),
                alert("other"),
            ],
            T0,
        )
        lease = T0 + timedelta(minutes=5)
        first = one.outbox.claim_next(T0, lease_until=lease)
        second = two.outbox.claim_next(T0, lease_until=lease)
        assert first is not None and second is not None
        assert {first[0].channel, second[0].channel} == {"hook", "other"}
        assert two.outbox.claim_next(T0, lease_until=lease) is None, (
            "the hook queue's head is claimed: its second waits"
        )
        assert one.outbox.claim_next(lease - timedelta(seconds=1), lease_until=lease) is None
        hook = first if first[0].channel == "hook" else second
        # the claiming process died; once its lease is over another takes the message over
        taken = two.outbox.claim_next(lease, lease_until=lease + timedelta(minutes=5))
        assert taken is not None
        assert (taken[0].id, taken[1], taken[0].attempts) == (hook[0].id, True, 1), (
            "the interrupted send is not counted as an attempt (the channel never refused it)"
        )


def dead_process_identity() -> str:
    """The claim identity of a real process that has exited."""
    import subprocess
    import sys

    from tests.support.workspace import REPO

    done = subprocess.run(
        [sys.executable, "-c", "from watcher.notify.claims import me; print(me())"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.slow
def test_a_claim_of_a_process_that_died_is_taken_over_at_once_and_a_live_one_never(tmp_path: Any) -> None:
    from watcher.notify import claims

    dead = dead_process_identity()
    assert claims.is_dead(dead) and not claims.is_dead(claims.me())
    assert not claims.is_dead("another-host/boot/1/1"), "a process we cannot see keeps its claim until its lease ends"
    url = f"sqlite:///{tmp_path / 'tw.sqlite'}"
    with Store(url) as store:
        store.outbox.enqueue([changes("NCT04728893", 1), changes("NCT03418623", 2)], T0)
        lease = T0 + timedelta(minutes=5)
        first = store.outbox.claim_next(T0, lease_until=lease, channel="hook", claimer=dead)
        assert first is not None and first[0].attempts == 1
        (head,) = store.outbox.heads()
        assert (head.status, head.claimed_by) == ("sending", dead)
        live = store.outbox.claim_next(T0, lease_until=lease, channel="hook", is_dead=lambda c: c != dead)
        assert live is None, "a claim whose process may be alive waits for its lease"
        at = T0 + timedelta(seconds=5)
        assert store.outbox.due_channels(at, is_dead=claims.is_dead) == ["hook"]
        taken = store.outbox.claim_next(
            at, lease_until=at + timedelta(minutes=5), channel="hook", claimer=claims.me(), is_dead=claims.is_dead
        )
        assert taken is not None
        assert (taken[0].id, taken[1], taken[0].attempts) == (first[0].id, True, 1)
        (head,) = store.outbox.heads()
        assert head.claimed_by == claims.me()
        store.outbox.finish_sent(taken[0].id, at)
        (head,) = store.outbox.heads()
        assert (head.id, head.status, head.claimed_by) == (2, "pending", None)
        assert store.meta.get(OUTBOX_CLAIM.of(taken[0].id)) is None, "a finished claim leaves nothing behind"


@pytest.mark.slow
def test_a_message_that_kills_its_sender_every_time_still_counts_towards_parking(tmp_path: Any) -> None:
    from watcher.store.outbox import FREE_RECOVERIES

    with Store(f"sqlite:///{tmp_path / 'tw.sqlite'}") as store:
        store.outbox.enqueue([changes("NCT04728893", 1)], T0)
        dead = dead_process_identity()
        attempts = []
        for n in range(FREE_RECOVERIES + 3):
            at = T0 + timedelta(seconds=n)
            claim = store.outbox.claim_next(
                at, lease_until=at + timedelta(minutes=5), channel="hook", claimer=dead, is_dead=lambda c: c == dead
            )
            assert claim is not None
            attempts.append(claim[0].attempts)
        assert attempts == [1, 1, 1, 2, 3], "the first cut-off sends are free; a crash loop then counts"


def test_secrets_stay_out_of_logs_errors_database_and_check_config(workspace: Workspace) -> None:
    from unittest import mock

    token, chat = "123456789:AAHsuperSecretBotToken", "-1009876543210"
    config, store = setup(
        workspace,
        {
            "bot": {"url": f"tgram://{token}/{chat}/"},
            "hook": {"url": "json://trial:Pa55word-xyz@127.0.0.1:9/hook-key-abcdef"},
        },
    )
    store.outbox.enqueue(
        [
            NewMessage("bot", sample_payload(T0)),
            NewMessage("hook", sample_payload(T0)),
        ],
        T0,
    )
    answer = mock.Mock(status_code=401, content=b'{"ok": false, "description": "Unauthorized"}')
    with capture_logs() as logs, mock.patch("requests.post", return_value=answer):
        outcomes = notify_tick(config, store, now=Clock())
    assert [o.accepted for o in outcomes] == [False, False]
    secrets = (token, "AAHsuperSecretBotToken", chat, "Pa55word-xyz", "hook-key-abcdef")
    shown = repr(logs) + repr([o.error for o in outcomes])
    assert "***" in shown
    import sqlalchemy

    with store.engine.connect() as conn:
        for table in ("outbox", "meta", "trials", "snapshots", "changes", "cycles"):
            shown += repr(conn.execute(sqlalchemy.text(f"SELECT * FROM {table}")).all())
    result = workspace.cli("check-config")
    assert result.code == 0
    shown += result.out + result.err
    for secret in secrets:
        assert secret not in shown
    assert "bot → tgram://***" in result.out and "hook → json://127.0.0.1/***" in result.out


# -- PostgreSQL: two processes sharing one database ----------------------------------------------

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    import sqlalchemy

    try:
        admin = sqlalchemy.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"tw_notify_{uuid.uuid4().hex[:10]}"
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # no server, no test
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.mark.postgres
def test_two_senders_on_postgresql_never_send_a_message_twice(pg_url: str) -> None:
    with Store(pg_url) as seed:
        seed.outbox.enqueue([alert(f"ch{n % 3}", subject=str(n)) for n in range(60)], T0)
    sent: list[tuple[str, int]] = []
    lock = threading.Lock()

    def sender() -> None:
        with Store(pg_url) as store:
            idle = 0
            while idle < 20:
                claim = store.outbox.claim_next(T0, lease_until=T0 + timedelta(minutes=5))
                if claim is None:
                    idle += 1
                    threading.Event().wait(0.01)
                    continue
                idle = 0
                with lock:
                    sent.append((claim[0].channel, int(claim[0].payload["subject"])))
                store.outbox.finish_sent(claim[0].id, T0)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(n for _, n in sent) == list(range(60)), "every message exactly once"
    for channel in ("ch0", "ch1", "ch2"):
        order = [n for c, n in sent if c == channel]
        assert order == sorted(order), "each channel's messages in order"


@pytest.fixture
def hanging_smtp() -> Iterator[str]:
    """An SMTP server that accepts the connection and never says a word (no greeting, ever)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"mailto://127.0.0.1:{server.getsockname()[1]}?to=a@example.org&from=b@example.org"
    finally:
        server.close()


def test_a_hanging_channel_never_holds_back_another(
    workspace: Workspace,
    webhook: WebhookReceiver,
    hanging_smtp: str,
) -> None:
    import time

    from watcher.notify import delivery

    config, store = setup(workspace, {"hung-mail": {"url": hanging_smtp}, "hook": {"url": webhook.url()}})
    mail = [alert("hung-mail", nct_id="NCT04728893")]
    store.outbox.enqueue(mail + [changes("NCT04728893", n) for n in (1, 2, 3)], T0)
    result: list[Any] = []
    started = time.monotonic()
    tick = threading.Thread(target=lambda: result.append(notify_tick(config, store, now=Clock())))
    tick.start()
    wait_until(lambda: len(webhook.requests) == 3, timeout=10)
    arrived = time.monotonic() - started
    tick.join(timeout=30)
    took = time.monotonic() - started
    assert arrived < 1.5, f"the webhook's messages waited {arrived:.1f} s for the hung SMTP server"
    assert [r.json()["trial"]["label"] for r in webhook.requests] == ["message 1", "message 2", "message 3"]
    assert [o.channel for o in result[0]] == ["hook"] * 3, "the hung channel's outcome is not waited for"
    assert took < delivery.TICK_WAIT + 2, f"the tick took {took:.1f} s"
    # The next tick leaves the hung channel alone (its worker is still waiting) and sends the new one.
    store.outbox.enqueue([changes("NCT04728893", 4)], T0)
    again = notify_tick(config, store, now=Clock())
    assert [o.channel for o in again] == ["hook"]
    assert [r.json()["trial"]["label"] for r in webhook.requests][-1] == "message 4"
    assert "hung-mail" in delivery._busy


@pytest.fixture
def hanging_http() -> Iterator[str]:
    """A webhook that accepts the connection and never answers the request."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"json://127.0.0.1:{server.getsockname()[1]}/never"
    finally:
        server.close()


@pytest.mark.parametrize("hung", ["smtp", "webhook"])
def test_a_hung_send_ends_at_the_channel_timeout_and_is_retried_with_backoff(
    hung: str,
    workspace: Workspace,
    webhook: WebhookReceiver,
    hanging_smtp: str,
    hanging_http: str,
) -> None:
    import time

    url = hanging_smtp if hung == "smtp" else hanging_http
    config, store = setup(workspace, {"hung": {"url": url, "timeout": "2s"}, "hook": {"url": webhook.url()}})
    assert config.settings.channels["hung"].timeout == timedelta(seconds=2)
    store.outbox.enqueue(
        [alert("hung", nct_id="NCT04728893")] + [changes("NCT04728893", n) for n in (1, 2, 3)],
        T0,
    )
    clock = Clock()
    started = time.monotonic()
    arrivals: list[float] = []

    def watch() -> None:
        while len(arrivals) < 3 and time.monotonic() - started < 10:
            arrivals.extend([time.monotonic() - started] * (len(webhook.requests) - len(arrivals)))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with capture_logs() as logs:
        outcomes = notify_tick(config, store, now=clock)
    took = time.monotonic() - started
    watcher.join()
    print(
        f"\n[timings, hung {hung}] webhook messages arrived at "
        f"{', '.join(f'{a:.3f}' for a in arrivals)} s; the hung send gave up and the tick returned at {took:.3f} s"
    )
    assert len(arrivals) == 3 and max(arrivals) < 2.0, f"the webhook waited for the hung {hung}: {arrivals}"
    (failed,) = [o for o in outcomes if o.channel == "hung"]
    assert not failed.accepted and not failed.parked
    assert took < 5, "the hung send itself is bounded by the channel's timeout (2 s), not apprise's or the OS's"
    if hung == "smtp":
        assert "did not answer within 2 s" in (failed.error or "")
    (message,) = [m for m in store.outbox.messages() if m.channel == "hung"]
    assert (message.status, message.attempts) == ("pending", 1), "a timed-out send is retried, not dropped"
    (event,) = [e for e in logs if e["event"] == "notify.failed"]
    assert event["retry_at"] == (T0 + timedelta(seconds=30)).isoformat()
    clock.advance(seconds=30)
    notify_tick(config, store, now=clock)
    (message,) = [m for m in store.outbox.messages() if m.channel == "hung"]
    assert (message.status, message.attempts) == ("pending", 2)
