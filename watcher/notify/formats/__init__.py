"""Per-channel message formats: pure functions from an outbox payload to what apprise sends.

One typed `Context` is built from the typed payload first (`build.context`); every built-in
format reads that same context, and every user template reads it as plain data
(`template_variables`), so a Slack line, an email row and a webhook change object always agree.
Nothing here does I/O, logging or reads the clock: the delivery time comes in as an argument
(an import-linter contract keeps it so).

Formats by channel kind (see `watcher.config.channels.channel_kind`):
- slack     compact Markdown (apprise turns it into Slack mrkdwn), one line per change
- email     subject with NCT ID, label and the most important change; an HTML table of
            old/new values plus our own plain-text alternative
- telegram  HTML within Telegram's 4,096-character limit, split into numbered parts
- json      a structured, versioned document (`SCHEMA`, see `webhook`) next to apprise's title/message
- text      every other apprise service: the plain-text body
Long messages are cut with a link to the trial's full history on ClinicalTrials.gov.

Modules: `context` (the typed context), `build` (payload → context), `bulk` (one-line summaries of
bulk list changes), `text` (fitting long messages, plain text), `chat` (Slack, Telegram), `mail`
(HTML email with its plain-text part), `webhook` (the JSON document, its model and JSON Schema).
`FORMATS` maps a channel kind to its renderer; every public name is importable from
`watcher.notify.formats`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from watcher.notify.formats.build import SUMMARY_WIDTH, change_context, context, default_title, trial_context
from watcher.notify.formats.chat import SLACK_LIMIT, TELEGRAM_LIMIT, TELEGRAM_MAX_PARTS, slack, split_lines, telegram
from watcher.notify.formats.context import (
    ChangeContext,
    Context,
    Delivery,
    Entry,
    SummaryEntry,
    TrialContext,
    template_variables,
)
from watcher.notify.formats.mail import EMAIL_MAX_CHANGES, email
from watcher.notify.formats.text import TEXT_LIMIT, Rendered, plain_text, text
from watcher.notify.formats.webhook import SCHEMA, SCHEMA_VERSION, Document, document, json_schema, json_webhook

FORMATS: Mapping[str, Callable[[Context], Rendered]] = {
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
    "ChangeContext",
    "Context",
    "Delivery",
    "Document",
    "Entry",
    "Rendered",
    "SummaryEntry",
    "TrialContext",
    "change_context",
    "context",
    "default_title",
    "document",
    "email",
    "json_schema",
    "json_webhook",
    "plain_text",
    "slack",
    "split_lines",
    "telegram",
    "template_variables",
    "text",
    "trial_context",
]
