"""Email without patching apprise: what we read from apprise (pinned here, so a release that moves
it fails CI), and what a real SMTP server (aiosmtpd) receives."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import msgspec
import pytest

from tests.support.peers import SmtpServer
from watcher.config import ChannelSettings
from watcher.notify.delivery import render
from watcher.notify.formats import Delivery
from watcher.notify.mail import APPRISE_EMAIL_FIELDS, smtp_target
from watcher.notify.payloads import sample_payload
from watcher.notify.send import Sender, with_timeout

NOW = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)


def send_changes(url: str, message_id: int = 42) -> None:
    channel = ChannelSettings(name="mail", url=url)
    data = msgspec.structs.replace(sample_payload(NOW), test=msgspec.UNSET)
    rendered = render(data, channel, Delivery("mail", message_id, NOW, NOW))
    Sender({"mail": channel}).send("mail", rendered, message_id=message_id)


# -- the apprise API we rely on ------------------------------------------------------------------


def test_the_apprise_api_we_call_exists_with_the_arguments_we_pass() -> None:
    import apprise

    notify = inspect.signature(apprise.Apprise.notify).parameters
    assert {"body", "title", "body_format"} <= set(notify)
    assert "url" in inspect.signature(apprise.Apprise.instantiate).parameters
    assert callable(apprise.Apprise.add) and callable(apprise.Apprise.details)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mailto://127.0.0.1:2525?to=a@example.org&from=b@example.org",
            ("127.0.0.1", 2525, "plain", "b@example.org", ("a@example.org",), (), None),
        ),
        (
            "mailtos://me:pw@gmail.com",
            ("smtp.gmail.com", 587, "starttls", "me@gmail.com", ("me@gmail.com",), (), "me@gmail.com"),
        ),
        (
            "mailtos://u:pw@mail.example.org:465?mode=ssl&to=x@y.org,z@w.org&cc=c@d.org&from=Alerts<al@example.org>",
            ("mail.example.org", 465, "ssl", "al@example.org", ("x@y.org", "z@w.org"), ("c@d.org",), "u"),
        ),
    ],
)
def test_apprise_still_resolves_email_urls_into_the_fields_we_read(url: str, expected: tuple[Any, ...]) -> None:
    """If a release renames one of APPRISE_EMAIL_FIELDS, this fails (and email falls back to apprise)."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    assert [f for f in APPRISE_EMAIL_FIELDS if not hasattr(plugin, f)] == []
    target = smtp_target(url)
    assert target is not None
    got = (
        target.host,
        target.port,
        target.mode,
        target.sender.addr_spec,
        tuple(a.addr_spec for a in target.to),
        tuple(a.addr_spec for a in target.cc),
        target.user,
    )
    assert got == expected
    assert "pw" not in repr(target)


def test_apprise_still_reads_its_documented_timeout_arguments() -> None:
    import apprise

    plugin = apprise.Apprise.instantiate(with_timeout("json://127.0.0.1:9/hook", 2.5))
    assert (plugin.socket_connect_timeout, plugin.socket_read_timeout) == (2.5, 2.5)
    assert with_timeout("json://h/p?rto=9", 2) == "json://h/p?rto=9&cto=2", "a timeout in the URL wins"


def test_nothing_in_apprise_is_replaced(smtp_server: SmtpServer) -> None:
    from apprise import conversion
    from apprise.plugins.email import base

    send_changes(smtp_server.url())
    assert base.convert_between is conversion.convert_between


# -- what a real SMTP server receives ------------------------------------------------------------


def test_an_smtp_server_receives_multipart_alternative_with_our_text_and_the_html(smtp_server: SmtpServer) -> None:
    send_changes(smtp_server.url(), message_id=42)
    send_changes(smtp_server.url(), message_id=42)  # the same outbox message again (the crash window)
    first, again = smtp_server.messages
    assert first.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in first.iter_parts()] == ["text/plain", "text/html"]
    plain = first.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = first.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "status.overallStatus: RECRUITING → SUSPENDED" in plain and "<" not in plain
    assert "<table" in html
    assert first["From"] == "trialwatch@example.org" and first["To"] == "watcher@example.org"
    assert smtp_server.collector.envelopes[0].rcpt_tos == ["watcher@example.org"]
    assert first["Message-ID"] == again["Message-ID"] == "<trialwatch-42@example.org>", (
        "a resent message keeps its Message-ID, so mail clients can fold the duplicate"
    )


def test_if_apprise_stops_exposing_the_fields_the_email_still_goes_out_through_apprise(
    smtp_server: SmtpServer,
) -> None:
    moved = (*APPRISE_EMAIL_FIELDS, "smtp_host_renamed_in_a_future_release")
    with mock.patch("watcher.notify.mail.APPRISE_EMAIL_FIELDS", moved):
        assert smtp_target(smtp_server.url()) is None
        send_changes(smtp_server.url())
    (mail,) = smtp_server.messages
    assert mail.get_body(preferencelist=("html",)) is not None, "apprise sent it, with its own text part"
