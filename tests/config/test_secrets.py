"""Redaction of apprise URLs: what may be shown of a channel, and what never."""

from __future__ import annotations

import pytest

from watcher.config.secrets import redact, redact_url, secret_parts


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("tgram://123456789:AAHsuperSecret/-100123/", "tgram://***"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#trials", "slack://***"),
        ("https://hooks.slack.com/services/T1/B2/C3", "https://hooks.slack.com/***"),
        ("mailtos://user:pw@smtp.example.org?to=a@b.org", "mailtos://smtp.example.org/***"),
        ("json://127.0.0.1:9/hook", "json://127.0.0.1/***"),
        ("json://localhost:8080", "json://localhost"),
        ("ntfy://mytopic", "ntfy://***"),
        ("discord://1234/abcd", "discord://***"),
    ],
)
def test_redact_url_shows_only_a_real_host(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_every_credential_of_a_url_is_redacted_from_text() -> None:
    url = "json://trial:Pa55word-xyz@hooks.example.org:8443/path-key-123?token=tok-456"
    text = f"POST {url} failed for trial:Pa55word-xyz at /path-key-123 with tok-456"
    cleaned = redact(text, secret_parts(url))
    for secret in ("Pa55word-xyz", "path-key-123", "tok-456", url):
        assert secret not in cleaned
    assert cleaned == "POST *** failed for ***:*** at /*** with ***"
