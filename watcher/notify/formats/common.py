"""Per-channel message formats: pure functions from an outbox payload to what apprise sends.

One plain `context` (a dict) is built from the payload first; every built-in format and
every user template reads that same context, so a Slack line, an email row and a webhook
change object always agree. Nothing here does I/O or reads the clock: the delivery time
comes in as an argument.

Formats by channel kind (see `watcher.channels.channel_kind`):
- slack     compact Markdown (apprise turns it into Slack mrkdwn), one line per change
- email     subject with NCT ID, label and the most important change; an HTML table of
            old/new values plus our own plain-text alternative
- telegram  HTML within Telegram's 4,096-character limit, split into numbered parts
- json      a structured, versioned document (SCHEMA below) next to apprise's title/message
- text      every other apprise service: the plain-text body
Long messages are cut with a link to the trial's full history on ClinicalTrials.gov.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watcher.detect.describe import change_line, change_texts, format_value
from watcher.models import SEVERITY_RANK, Json, history_url, study_url

SCHEMA = "trialwatch.notification"
SCHEMA_VERSION = 1

TELEGRAM_LIMIT = 4096
TELEGRAM_MAX_PARTS = 4
SLACK_LIMIT = 3500
EMAIL_MAX_CHANGES = 200
TEXT_LIMIT = 30000
SUMMARY_WIDTH = 300

_SEVERITY_ORDER = ("critical", "major", "minor")
_SLACK_MARK = {"critical": ":red_circle:", "major": ":large_orange_circle:", "minor": ":white_circle:"}
_TELEGRAM_MARK = {"critical": "🔴", "major": "🟠", "minor": "⚪"}
_EMAIL_COLOR = {"critical": "#b3261e", "major": "#b26a00", "minor": "#5f6368"}


@dataclass(frozen=True, slots=True)
class Delivery:
    """When and as what a payload is being delivered: the inputs that are not in the payload."""

    channel: str
    message_id: int | None
    created_at: datetime
    now: datetime
    delay_note_after: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Rendered:
    """What one outbox message becomes for one channel.

    `parts` holds one body per apprise call (only Telegram ever has more than one);
    `plain` is the email's text/plain alternative; `document` the JSON webhook's fields.
    """

    title: str
    parts: tuple[str, ...]
    body_format: str = "text"
    plain: str | None = None
    document: Mapping[str, Json] | None = None


# -- the context ---------------------------------------------------------------------------------


def _rank(severity: Any) -> int:
    return SEVERITY_RANK.get(str(severity), 0)


def change_context(change: Mapping[str, Json]) -> dict[str, Any]:
    kind = change.get("change")
    old_text, new_text = change_texts(change)
    event = change.get("event") if isinstance(change.get("event"), Mapping) else None
    summary = format_value(event.get("summary"), width=SUMMARY_WIDTH) if event and event.get("summary") else None
    return {
        "field": change.get("field"), "change": kind, "old": change.get("old"), "new": change.get("new"),
        "old_text": old_text, "new_text": new_text, "severity": change.get("severity") or "minor",
        "event": event, "summary": summary, "line": change_line(change),
    }


def trial_context(item: Mapping[str, Json]) -> dict[str, Any]:
    """One trial's part of a message, its changes most severe first (stable within a severity)."""
    nct_id = str(item.get("nct_id"))
    changes = sorted((change_context(c) for c in item.get("changes") or []), key=lambda c: -_rank(c["severity"]))
    label = item.get("label")
    return {
        "nct_id": nct_id, "label": label, "title": item.get("title"),
        "display": f"{nct_id} ({label})" if label else nct_id,
        "url": item.get("url") or study_url(nct_id), "history_url": item.get("history_url") or history_url(nct_id),
        "version": item.get("version"), "detected_at": item.get("detected_at"),
        "severity": changes[0]["severity"] if changes else None, "count": len(changes), "changes": changes,
    }


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins or not (days or hours)
             else ""]
    return " ".join(p for p in parts if p)


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def context(payload: Mapping[str, Json], delivery: Delivery) -> dict[str, Any]:
    """The variables of every format and template (documented in README, "Templates")."""
    kind = str(payload.get("type") or "changes")
    late = delivery.now - delivery.created_at
    delay = None
    if late >= delivery.delay_note_after:
        delay = f"Delayed delivery: queued {_stamp(delivery.created_at)}, sent {_duration(late)} later."
    ctx: dict[str, Any] = {
        "kind": kind, "channel": delivery.channel, "message_id": delivery.message_id,
        "created_at": delivery.created_at.isoformat(), "sent_at": delivery.now.isoformat(),
        "delay": delay, "delay_seconds": max(int(late.total_seconds()), 0), "test": bool(payload.get("test")),
        "trials": [], "trial": None, "changes": [], "count": 0, "severity": None, "headline": "",
        "subject": payload.get("subject"), "text": payload.get("text"),
        "since": payload.get("since"), "until": payload.get("until"),
    }
    for key in ("nct_id", "trials_watched", "last_poll", "next_poll"):
        if key in payload:
            ctx[key] = payload[key]
    if kind in ("changes", "digest"):
        items = payload.get("trials") if kind == "digest" else [payload]
        trials = [trial_context(item) for item in items or []]
        if kind == "digest":
            trials.sort(key=lambda t: (-_rank(t["severity"]), t["nct_id"]))
        flat = [c for t in trials for c in t["changes"]]
        top = max(flat, key=lambda c: _rank(c["severity"]), default=None)
        ctx.update(trials=trials, trial=trials[0] if trials else None, changes=flat, count=len(flat),
                   severity=top["severity"] if top else None,
                   headline=(top["summary"] or top["line"]) if top else "")
    ctx["title"] = default_title(ctx)
    ctx["body_text"] = plain_text(ctx)
    return ctx


def default_title(ctx: Mapping[str, Any]) -> str:
    prefix = "[test] " if ctx["test"] else ""
    if ctx["kind"] == "changes" and ctx["trial"]:
        more = ctx["count"] - 1
        title = f"{ctx['trial']['display']}: {ctx['headline']}" + (f" (+{more} more)" if more > 0 else "")
    elif ctx["kind"] == "digest":
        count, trials = ctx["count"], len(ctx["trials"])
        title = (f"TrialWatch digest: {count} change{'s' if count != 1 else ''} in {trials} "
                 f"trial{'s' if trials != 1 else ''}")
    else:
        title = str(ctx.get("subject") or "TrialWatch")
    return format_value(prefix + title, width=200)


# -- fitting long messages -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Style:
    """How one format writes the pieces of a change list."""

    trial_header: Callable[[Mapping[str, Any], bool], list[str]]
    change: Callable[[Mapping[str, Any]], list[str]]
    more: Callable[[Mapping[str, Any], int], str]
    skipped_trial: Callable[[Mapping[str, Any]], str]
    trial_footer: Callable[[Mapping[str, Any]], list[str]]


def _fit(trials: Sequence[Mapping[str, Any]], style: _Style, budget: int, *, digest: bool,
         max_changes: int | None = None) -> list[str]:
    """Lines for every trial, cut (with a link to the full history) once `budget` characters
    or `max_changes` changes are used; the trials after the cut each keep a one-line pointer
    to their history, whose room is reserved from the start."""
    def size(lines: Sequence[str]) -> int:
        return sum(len(line) + 1 for line in lines)

    pointers = [size([style.skipped_trial(t)]) for t in trials]
    out: list[str] = []
    used = shown = 0
    full = False
    for position, trial in enumerate(trials):
        if full:
            out.append(style.skipped_trial(trial))
            continue
        header, footer = style.trial_header(trial, digest), style.trial_footer(trial)
        out.extend(header)
        used += size(header)
        reserve = size([style.more(trial, trial["count"])]) + size(footer) + sum(pointers[position + 1:])
        for index, change in enumerate(trial["changes"]):
            block = style.change(change)
            if (max_changes is not None and shown >= max_changes) or used + size(block) + reserve > budget:
                out.append(style.more(trial, trial["count"] - index))
                full = True
                break
            out.extend(block)
            used += size(block)
            shown += 1
        out.extend(footer)
        used += size(footer)
    return out


# -- plain text ----------------------------------------------------------------------------------


def _text_header(trial: Mapping[str, Any], digest: bool) -> list[str]:
    count = trial["count"]
    version = f", version {trial['version']}" if trial.get("version") else ""
    lines = [f"{trial['display']}: {count} change{'s' if count != 1 else ''}{version}"]
    if trial.get("title"):
        lines.append(str(trial["title"]))
    return [*lines, ""]


def _text_change(change: Mapping[str, Any]) -> list[str]:
    note = f": {change['summary']}" if change["summary"] else ""
    return [change["line"], f"  ↳ {change['severity']}{note}"]


_TEXT = _Style(
    trial_header=_text_header,
    change=_text_change,
    more=lambda t, n: f"… and {n} more change{'s' if n != 1 else ''}: full history at {t['history_url']}",
    skipped_trial=lambda t: f"{t['display']}: {t['count']} changes not shown: {t['history_url']}",
    trial_footer=lambda t: ["", f"Study: {t['url']}", f"Full history: {t['history_url']}", ""],
)


def plain_text(ctx: Mapping[str, Any], budget: int = TEXT_LIMIT) -> str:
    lines: list[str] = []
    if ctx["test"]:
        lines += ["This is a test message from `trialwatch notify-test`; the changes below are samples.", ""]
    if ctx["delay"]:
        lines += [ctx["delay"], ""]
    if ctx["kind"] in ("changes", "digest"):
        if ctx["kind"] == "digest":
            lines += [f"Changes since {ctx['since']}, most severe first.", ""]
        lines += _fit(ctx["trials"], _TEXT, budget, digest=ctx["kind"] == "digest")
    else:
        lines += [str(ctx.get("text") or "")]
    return "\n".join(lines).strip()


# -- Slack ---------------------------------------------------------------------------------------

_SLACK_UNSAFE = str.maketrans({"<": "‹", ">": "›", "*": "∗", "`": "ʹ", "[": "(", "]": ")"})


def _slack(text: Any) -> str:
    """A value made inert for Markdown → mrkdwn (apprise escapes `&` itself)."""
    return str(text).translate(_SLACK_UNSAFE)


def _slack_header(trial: Mapping[str, Any], digest: bool) -> list[str]:
    label = f" {_slack(trial['label'])}" if trial.get("label") else ""
    title = f" — {_slack(format_value(trial['title'], width=90))}" if trial.get("title") else ""
    return [f"**[{trial['nct_id']}]({trial['url']})**{label}{title}"]


def _slack_change(change: Mapping[str, Any]) -> list[str]:
    mark = _SLACK_MARK.get(change["severity"], "")
    summary = f" — {_slack(change['summary'])}" if change["summary"] else ""
    return [f"{mark} `{_slack(change['field'])}`: {_slack(change['old_text'])} → {_slack(change['new_text'])}"
            f"{summary}"]


_SLACK = _Style(
    trial_header=_slack_header,
    change=_slack_change,
    more=lambda t, n: f"… {n} more: [full history]({t['history_url']})",
    skipped_trial=lambda t: f"[{t['nct_id']}]({t['history_url']}): {t['count']} more changes",
    trial_footer=lambda t: [f"[Full history]({t['history_url']})"],
)


def slack(ctx: Mapping[str, Any]) -> Rendered:
    lines: list[str] = []
    if ctx["delay"]:
        lines.append(f"_{_slack(ctx['delay'])}_")
    if ctx["kind"] in ("changes", "digest"):
        lines += _fit(ctx["trials"], _SLACK, SLACK_LIMIT, digest=ctx["kind"] == "digest")
    else:
        lines.append(_slack(ctx.get("text") or ""))
    return Rendered(title=ctx["title"], parts=("\n".join(lines),), body_format="markdown")


# -- email ---------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _email_trial(trial: Mapping[str, Any], changes: Sequence[Mapping[str, Any]], omitted: int) -> str:
    cell = "padding:6px 10px;border-bottom:1px solid #e0e0e0;vertical-align:top;text-align:left"
    head = "".join(f'<th style="{cell};background:#f5f5f5">{h}</th>' for h in ("Severity", "Field", "Old", "New"))
    rows = []
    for change in changes:
        color = _EMAIL_COLOR.get(change["severity"], "#5f6368")
        summary = f'<br><span style="color:#5f6368">{_e(change["summary"])}</span>' if change["summary"] else ""
        rows.append(
            f'<tr><td style="{cell};color:{color};font-weight:bold">{_e(change["severity"])}</td>'
            f'<td style="{cell}"><code>{_e(change["field"])}</code>{summary}</td>'
            f'<td style="{cell}">{_e(change["old_text"])}</td><td style="{cell}">{_e(change["new_text"])}</td></tr>')
    more = (f'<p>… and {omitted} more change{"s" if omitted != 1 else ""}: '
            f'<a href="{_e(trial["history_url"])}">full history</a></p>') if omitted else ""
    title = f'<p style="margin:0 0 8px">{_e(trial["title"])}</p>' if trial.get("title") else ""
    count = trial["count"]
    version = f", version {_e(trial['version'])}" if trial.get("version") else ""
    return (f'<h3 style="margin:16px 0 4px"><a href="{_e(trial["url"])}">{_e(trial["nct_id"])}</a>'
            f'{" · " + _e(trial["label"]) if trial.get("label") else ""}</h3>{title}'
            f'<p style="margin:0 0 8px;color:#5f6368">{count} change{"s" if count != 1 else ""}{version}</p>'
            f'<table style="border-collapse:collapse;font-size:14px"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{more}'
            f'<p><a href="{_e(trial["url"])}">Study on ClinicalTrials.gov</a> · '
            f'<a href="{_e(trial["history_url"])}">Full history</a></p>')


def email(ctx: Mapping[str, Any]) -> Rendered:
    blocks: list[str] = []
    if ctx["test"]:
        blocks.append("<p><em>A test message from <code>trialwatch notify-test</code>; the changes are samples."
                      "</em></p>")
    if ctx["delay"]:
        blocks.append(f'<p style="color:#b26a00">{_e(ctx["delay"])}</p>')
    if ctx["kind"] in ("changes", "digest"):
        if ctx["kind"] == "digest":
            blocks.append(f"<p>Changes since {_e(ctx['since'])}, most severe first.</p>")
        budget = EMAIL_MAX_CHANGES
        for trial in ctx["trials"]:
            shown = trial["changes"][:max(budget, 0)]
            budget -= len(shown)
            blocks.append(_email_trial(trial, shown, trial["count"] - len(shown)))
    else:
        blocks.append("".join(f"<p>{_e(p)}</p>" for p in str(ctx.get("text") or "").split("\n\n")))
    body = '<div style="font-family:Arial,Helvetica,sans-serif;color:#202124">' + "".join(blocks) + "</div>"
    plain = plain_text(ctx)
    if ctx["kind"] in ("changes", "digest") and ctx["count"] > EMAIL_MAX_CHANGES:
        plain = plain_text(ctx, budget=EMAIL_MAX_CHANGES * 120)
    return Rendered(title=ctx["title"], parts=(body,), body_format="html", plain=plain)


# -- Telegram ------------------------------------------------------------------------------------


def _telegram_header(trial: Mapping[str, Any], digest: bool) -> list[str]:
    label = f" · {_e(trial['label'])}" if trial.get("label") else ""
    count = trial["count"]
    lines = [f'<b><a href="{_e(trial["url"])}">{_e(trial["nct_id"])}</a></b>{label} — '
             f'{count} change{"s" if count != 1 else ""}']
    if trial.get("title"):
        lines.append(f"<i>{_e(format_value(trial['title'], width=200))}</i>")
    return lines


def _telegram_change(change: Mapping[str, Any]) -> list[str]:
    mark = _TELEGRAM_MARK.get(change["severity"], "")
    line = [f"{mark} <code>{_e(change['field'])}</code>: {_e(change['old_text'])} → {_e(change['new_text'])}"]
    if change["summary"]:
        line.append(f"    <i>{_e(change['summary'])}</i>")
    return line


_TELEGRAM = _Style(
    trial_header=_telegram_header,
    change=_telegram_change,
    more=lambda t, n: f'… {n} more: <a href="{_e(t["history_url"])}">full history</a>',
    skipped_trial=lambda t: f'<a href="{_e(t["history_url"])}">{_e(t["nct_id"])}</a>: {t["count"]} more changes',
    trial_footer=lambda t: [f'<a href="{_e(t["history_url"])}">Full history</a>', ""],
)


def split_lines(lines: Sequence[str], limit: int) -> list[str]:
    """Join lines into chunks of at most `limit` characters, breaking only between lines
    (each line is balanced HTML, so no chunk ever cuts a tag in half)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for raw in lines:
        line = raw if len(raw) <= limit else raw[: limit - 1] + "…"
        if current and size + len(line) + 1 > limit:
            chunks.append("\n".join(current).strip())
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current).strip())
    return [c for c in chunks if c]


def telegram(ctx: Mapping[str, Any]) -> Rendered:
    lines = [f"<b>{_e(ctx['title'])}</b>"]
    if ctx["delay"]:
        lines.append(f"<i>{_e(ctx['delay'])}</i>")
    lines.append("")
    if ctx["kind"] in ("changes", "digest"):
        budget = TELEGRAM_LIMIT * TELEGRAM_MAX_PARTS - 400
        lines += _fit(ctx["trials"], _TELEGRAM, budget, digest=ctx["kind"] == "digest")
    else:
        lines.append(_e(ctx.get("text") or ""))
    marker = len(" (9/9)")
    parts = split_lines(lines, TELEGRAM_LIMIT - marker)
    if len(parts) > 1:
        parts = [f"{part}\n({n}/{len(parts)})" for n, part in enumerate(parts, start=1)]
    return Rendered(title="", parts=tuple(parts), body_format="html")


# -- JSON webhook --------------------------------------------------------------------------------


def _json_change(change: Mapping[str, Any]) -> dict[str, Json]:
    return {key: change[key] for key in ("field", "change", "old", "new", "old_text", "new_text", "severity",
                                         "event")}


def _json_trial(trial: Mapping[str, Any]) -> dict[str, Json]:
    return {
        "trial": {"nct_id": trial["nct_id"], "label": trial["label"], "title": trial["title"]},
        "record_version": trial["version"], "detected_at": trial["detected_at"], "severity": trial["severity"],
        "changes": [_json_change(c) for c in trial["changes"]],
        "links": {"study": trial["url"], "history": trial["history_url"]},
    }


def document(ctx: Mapping[str, Any]) -> dict[str, Json]:
    """The webhook's structured fields, schema `trialwatch.notification` version 1 (README).

    They sit beside apprise's own envelope, so no key may be one of its names (`version`,
    `title`, `message`, `attachments`, `type`): apprise would read it as a rename.
    """
    doc: dict[str, Json] = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": ctx["kind"], "test": ctx["test"],
        "message_id": ctx["message_id"], "channel": ctx["channel"], "created_at": ctx["created_at"],
        "sent_at": ctx["sent_at"], "delayed_seconds": ctx["delay_seconds"] if ctx["delay"] else 0,
    }
    if ctx["kind"] == "changes" and ctx["trial"]:
        doc.update(_json_trial(ctx["trial"]))
    elif ctx["kind"] == "digest":
        doc.update(since=ctx["since"], until=ctx["until"], severity=ctx["severity"],
                   trials=[_json_trial(t) for t in ctx["trials"]])
    else:
        doc.update(subject=ctx.get("subject"), text=ctx.get("text"))
        for key in ("nct_id", "trials_watched", "last_poll", "next_poll"):
            if key in ctx:
                doc[key] = ctx[key]
    return doc


def json_webhook(ctx: Mapping[str, Any]) -> Rendered:
    return Rendered(title=ctx["title"], parts=(ctx["body_text"],), body_format="text", document=document(ctx))


def text(ctx: Mapping[str, Any]) -> Rendered:
    return Rendered(title=ctx["title"], parts=(ctx["body_text"],), body_format="text")


FORMATS: Mapping[str, Callable[[Mapping[str, Any]], Rendered]] = {
    "slack": slack, "email": email, "telegram": telegram, "json": json_webhook, "text": text,
}
