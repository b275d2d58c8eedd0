"""Record text is third-party input: it cannot forge lines of a plain-text body, ping a Discord
server, or make Telegram refuse a message by a cut through a tag."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.peers import WebhookReceiver
from watcher.config import ChannelSettings
from watcher.notify.delivery import render
from watcher.notify.formats import Delivery
from watcher.notify.formats.chat import TELEGRAM_LIMIT, cut_html, split_lines
from watcher.notify.formats.text import one_line, without_mentions
from watcher.notify.payloads import sample_payload
from watcher.notify.send import Sender

NOW = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)
FORGED = "A trial\r\nStatus: COMPLETED\rDone\u2028Sponsor: nobody\x85more\x1b[2J"


def hostile(title: str) -> msgspec.Struct:
    return msgspec.structs.replace(sample_payload(NOW), title=title, test=msgspec.UNSET)


def rendered(url: str, title: str) -> object:
    channel = ChannelSettings(name="c", url=url)
    return render(hostile(title), channel, Delivery("c", 1, NOW, NOW))  # type: ignore[arg-type]


def test_line_breaks_in_a_title_cannot_forge_lines_of_the_plain_text_body() -> None:
    body = rendered("mailto://localhost?to=a@example.org", FORGED).plain  # type: ignore[attr-defined]
    lines = body.splitlines()
    assert "Status: COMPLETED" not in lines and not any(line.startswith(("Status:", "Sponsor:")) for line in lines)
    assert any("A trial Status: COMPLETED Done Sponsor: nobody more" in line for line in lines)
    assert "\x1b" not in body and "\r" not in body
    text = rendered("json://localhost/x", FORGED)
    assert not any(line.startswith("Status:") for line in text.parts[0].splitlines())  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["a\nb", "a\r\nb", "a\rb", "a\u2028b", "a\u2029b", "a\x85b", "a\x0bb", "a\x0cb"])
def test_one_line_keeps_every_value_on_its_line(value: str) -> None:
    assert one_line(value) == "a b"


def test_discord_mass_mentions_are_neutralised_on_the_wire(
    webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apprise's real Discord plugin posting to a real local receiver: `@everyone`/`@here` and role
    pings from a record arrive inert (a zero-width space after the `@`)."""
    from apprise.plugins.discord import NotifyDiscord

    monkeypatch.setattr(NotifyDiscord, "notify_url", f"http://127.0.0.1:{webhook.port}/api/webhooks")
    channel = ChannelSettings(name="d", url="discord://1234567890/abcdefTOKEN")
    title = "Trial for @everyone and @here, ask <@&4242> or <@!77>"
    message = render(hostile(title), channel, Delivery("d", 1, NOW, NOW))  # type: ignore[arg-type]
    Sender({"d": channel}).send("d", message)
    (request,) = webhook.requests
    sent = request.body.decode("unicode_escape") if b"\\u" in request.body else request.body.decode()
    assert "@everyone" not in sent and "@here" not in sent and "<@&4242>" not in sent and "<@!77>" not in sent
    assert "@\u200beveryone" in sent and "@\u200bhere" in sent


def test_without_mentions_leaves_email_addresses_alone() -> None:
    assert without_mentions("write to a@example.org") == "write to a@example.org"
    assert without_mentions("@Everyone <@123>") == "@\u200bEveryone <@\u200b123>"


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes nothing"
        self.open.pop()


def balanced(text: str) -> bool:
    if re.search(r"<[^>]*$|&[#A-Za-z0-9]*$", text):  # a tag or entity cut at the end
        return False
    checker = _Checker()
    checker.feed(text)
    checker.close()
    return not checker.open


PIECES = st.sampled_from(
    [
        "<b>",
        "</b>",
        "<i>",
        "</i>",
        '<a href="https://x.org/?a=1&amp;b=2">',
        "</a>",
        "&amp;",
        "&lt;",
        "&#39;",
        "x",
        "é",
        " ",
    ]
)


@given(st.lists(PIECES, max_size=60), st.integers(min_value=20, max_value=200))
def test_cut_html_never_cuts_inside_a_tag_or_entity_and_closes_what_it_opened(pieces: list[str], limit: int) -> None:
    line = _balance(pieces)
    cut = cut_html(line, limit)
    assert len(cut) <= limit and balanced(cut)


def _balance(pieces: list[str]) -> str:
    out, open_tags = [], []
    for piece in pieces:
        if piece.startswith("</"):
            name = piece[2:-1]
            if open_tags and open_tags[-1] == name:
                out.append(piece)
                open_tags.pop()
        elif piece.startswith("<"):
            out.append(piece)
            open_tags.append(piece[1 : piece.index(" ") if " " in piece else -1])
        else:
            out.append(piece)
    return "".join(out) + "".join(f"</{t}>" for t in reversed(open_tags))


@pytest.mark.parametrize("shift", range(0, 40, 3))
def test_a_line_longer_than_a_telegram_message_is_cut_between_tags_and_entities(shift: int) -> None:
    line = "x" * shift + '<i><a href="https://x.org/?a&amp;b">' + "Tom &amp; Jerry <b>bold</b> " * 400 + "</a></i>"
    parts = split_lines(["<b>title</b>", line, "after"], TELEGRAM_LIMIT)
    assert parts[-1] == "after" and all(len(part) <= TELEGRAM_LIMIT and balanced(part) for part in parts)
    (cut,) = [part for part in parts if "Jerry" in part]
    assert cut.endswith(("…</a></i>", "…</b></a></i>"))
