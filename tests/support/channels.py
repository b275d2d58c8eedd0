"""Channel helpers: a realistic change payload, a one-shot send, and a stand-in for apprise's HTTP transport
(Slack and Telegram are hosted: no local peer can exist, so the tests assert on the exact request)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from watcher.config import ChannelSettings
from watcher.messages import decode_payload, encode_payload
from watcher.notify.delivery import render
from watcher.notify.formats import Delivery
from watcher.notify.payloads import sample_payload
from watcher.notify.send import Sender

NOW = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)


SLACK_URL = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#trials"


TELEGRAM_URL = "tgram://123456789:AAHsecretTokenValue/-1001234567/"


def payload(**extra: Any) -> dict[str, Any]:
    """The sample change set as the outbox stores it (a dict of today's shape), with `extra` keys."""
    data = encode_payload(sample_payload(NOW))
    data.pop("test")
    data["label"] = "Nemtabrutinib CLL"
    data["title"] = "A Study of Nemtabrutinib vs Chemoimmunotherapy in CLL"
    data.update(extra)
    return data


def send(url: str, data: dict[str, Any], *, created_at: datetime = NOW, now: datetime = NOW) -> None:
    channel = ChannelSettings(name="ch", url=url)
    rendered = render(decode_payload(data), channel, Delivery("ch", 42, created_at, now))
    Sender({"ch": channel}).send("ch", rendered)


class Transport:
    """Stands in for `requests`: records every call and answers like the service would."""

    def __init__(self, answer: bytes) -> None:
        self.calls: list[dict[str, Any]] = []
        self.answer = answer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        method, url = (args[0], args[1]) if len(args) > 1 else ("post", args[0])
        self.calls.append(
            {"method": method.upper(), "url": url, "headers": kwargs["headers"], "json": json.loads(kwargs["data"])}
        )
        return mock.Mock(status_code=200, content=self.answer)


def many_changes(count: int) -> list[dict[str, Any]]:
    """Changes of as many separate fields (a list's items would be summarised in one line)."""
    return [
        {
            "field": f"custom.field{n}",
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
