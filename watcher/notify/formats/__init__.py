"""Per-channel message formats: pure functions from an outbox payload to what apprise sends.

One plain `context` (a dict) is built from the payload first; every built-in format and
every user template reads that same context, so a Slack line, an email row and a webhook
change object always agree. Nothing here does I/O or reads the clock: the delivery time
comes in as an argument.

Formats by channel kind (see `watcher.config.channels.channel_kind`):
- slack     compact Markdown (apprise turns it into Slack mrkdwn), one line per change
- email     subject with NCT ID, label and the most important change; an HTML table of
            old/new values plus our own plain-text alternative
- telegram  HTML within Telegram's 4,096-character limit, split into numbered parts
- json      a structured, versioned document (`SCHEMA`, see `webhook`) next to apprise's title/message
- text      every other apprise service: the plain-text body
Long messages are cut with a link to the trial's full history on ClinicalTrials.gov.

Modules: `common` (the context, fitting long messages, plain text), `chat` (Slack, Telegram),
`mail` (HTML email with its plain-text part), `webhook` (the JSON document). `FORMATS` maps a
channel kind to its renderer; every public name is importable from `watcher.notify.formats`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from watcher.notify.formats.chat import SLACK_LIMIT, TELEGRAM_LIMIT, TELEGRAM_MAX_PARTS, slack, split_lines, telegram
from watcher.notify.formats.common import (
    SUMMARY_WIDTH,
    TEXT_LIMIT,
    Delivery,
    Rendered,
    change_context,
    context,
    default_title,
    plain_text,
    text,
    trial_context,
)
from watcher.notify.formats.mail import EMAIL_MAX_CHANGES, email
from watcher.notify.formats.webhook import SCHEMA, SCHEMA_VERSION, document, json_webhook

FORMATS: Mapping[str, Callable[[Mapping[str, Any]], Rendered]] = {
    "slack": slack,
    "email": email,
    "telegram": telegram,
    "json": json_webhook,
    "text": text,
}

__all__ = [
    "EMAIL_MAX_CHANGES",
    "FORMATS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SLACK_LIMIT",
    "SUMMARY_WIDTH",
    "TELEGRAM_LIMIT",
    "TELEGRAM_MAX_PARTS",
    "TEXT_LIMIT",
    "Delivery",
    "Rendered",
    "change_context",
    "context",
    "default_title",
    "document",
    "email",
    "json_webhook",
    "plain_text",
    "slack",
    "split_lines",
    "telegram",
    "text",
    "trial_context",
]
