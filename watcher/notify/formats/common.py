"""What every format shares: the message context built from an outbox payload, the fitting of
long change lists into a budget, and the plain-text body (which is also the `text` format).

Nothing here does I/O or reads the clock: the delivery time comes in as an argument.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watcher.detect.describe import change_diff, change_line, change_texts, event_sentence, format_value
from watcher.detect.priority import order_key
from watcher.models import SEVERITY_RANK, Json, history_url, study_url
from watcher.notify.formats.bulk import summarise
from watcher.times import minute

TEXT_LIMIT = 30000
SUMMARY_WIDTH = 300


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


def entry_key(entry: Mapping[str, Any]) -> tuple[int, int]:
    """Priority order of a message entry: a change, or a bulk summary ranked as its first change."""
    rank: tuple[int, int] | None = entry.get("rank")
    return rank if rank is not None else order_key(entry)


def _rank(severity: Any) -> int:
    return SEVERITY_RANK.get(str(severity), 0)


def change_context(change: Mapping[str, Json]) -> dict[str, Any]:
    kind = change.get("change")
    old_text, new_text = change_texts(change)
    event = change.get("event") if isinstance(change.get("event"), Mapping) else None
    summary = format_value(event.get("summary"), width=SUMMARY_WIDTH) if event and event.get("summary") else None
    if summary and ": " in summary:
        head, _, tail = summary.partition(": ")
        value = change.get("new") if kind != "removed" else change.get("old")
        if isinstance(value, str) and len(value) > 40 and format_value(value, width=40)[:30] == tail[:30]:
            summary = head  # "Exclusion criterion reworded", not the criterion a second time
    line, diff, sentence = change_line(change), change_diff(change), False
    if event_sentence(change) and summary:
        old_text, new_text, diff, sentence, summary = "", summary, None, True, None
    return {
        "field": change.get("field"),
        "change": kind,
        "old": change.get("old"),
        "new": change.get("new"),
        "old_text": old_text,
        "new_text": new_text,
        "diff": diff,
        "sentence": sentence,
        "severity": change.get("severity") or "minor",
        "event": event,
        "summary": summary,
        "line": line,
    }


def trial_context(item: Mapping[str, Json]) -> dict[str, Any]:
    """One trial's part of a message, its changes in clinical priority order (`detect.priority`),
    severity breaking ties; the trial's severity is that of its most severe change."""
    nct_id = str(item.get("nct_id"))
    changes = sorted((change_context(c) for c in item.get("changes") or []), key=order_key)
    entries = summarise(changes)
    summarised = {f: e["family"] for e in entries if e.get("family") for f in e["fields"]}
    label = item.get("label")
    return {
        "nct_id": nct_id,
        "label": label,
        "title": item.get("title"),
        "display": f"{nct_id} ({label})" if label else nct_id,
        "url": item.get("url") or study_url(nct_id),
        "history_url": item.get("history_url") or history_url(nct_id),
        "version": item.get("version"),
        "detected_at": item.get("detected_at"),
        "severity": max((c["severity"] for c in changes), key=_rank, default=None),
        "count": len(changes),
        "changes": changes,
        "entries": entries,
        "summarised": summarised,
    }


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins or not (days or hours) else "",
    ]
    return " ".join(p for p in parts if p)


def context(payload: Mapping[str, Json], delivery: Delivery) -> dict[str, Any]:
    """The variables of every format and template (documented in README, "Templates")."""
    kind = str(payload.get("type") or "changes")
    late = delivery.now - delivery.created_at
    delay = None
    if late >= delivery.delay_note_after:
        delay = f"Delayed delivery: queued {minute(delivery.created_at)}, sent {_duration(late)} later."
    ctx: dict[str, Any] = {
        "kind": kind,
        "channel": delivery.channel,
        "message_id": delivery.message_id,
        "created_at": delivery.created_at.isoformat(),
        "sent_at": delivery.now.isoformat(),
        "delay": delay,
        "delay_seconds": max(int(late.total_seconds()), 0),
        "test": bool(payload.get("test")),
        "trials": [],
        "trial": None,
        "changes": [],
        "count": 0,
        "severity": None,
        "headline": "",
        "subject": payload.get("subject"),
        "text": payload.get("text"),
        "since": payload.get("since"),
        "until": payload.get("until"),
    }
    for key in ("nct_id", "trials_watched", "last_poll", "next_poll", "event", "search"):
        if key in payload:
            ctx[key] = payload[key]
    if kind in ("changes", "digest"):
        items = payload.get("trials") if kind == "digest" else [payload]
        trials = [trial_context(item) for item in items or []]
        if kind == "digest":
            trials.sort(key=lambda t: (-_rank(t["severity"]), t["nct_id"]))
        flat = [c for t in trials for c in t["changes"]]
        top = min((e for t in trials for e in t["entries"][:1]), key=entry_key, default=None)
        ctx.update(
            trials=trials,
            trial=trials[0] if trials else None,
            changes=flat,
            count=len(flat),
            severity=max((c["severity"] for c in flat), key=_rank, default=None),
            headline=(top["summary"] or (top["new_text"] if top.get("sentence") else top["line"])) if top else "",
        )
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
        title = (
            f"TrialWatch digest: {count} change{'s' if count != 1 else ''} in {trials} "
            f"trial{'s' if trials != 1 else ''}"
        )
    else:
        title = str(ctx.get("subject") or "TrialWatch")
    return format_value(prefix + title, width=200)


def escape(value: Any) -> str:
    """A value as HTML text (email and Telegram)."""
    return html.escape(str(value), quote=True)


# -- fitting long messages -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Style:
    """How one format writes the pieces of a change list."""

    trial_header: Callable[[Mapping[str, Any], bool], list[str]]
    change: Callable[[Mapping[str, Any]], list[str]]
    more: Callable[[Mapping[str, Any], int], str]
    skipped_trial: Callable[[Mapping[str, Any]], str]
    trial_footer: Callable[[Mapping[str, Any]], list[str]]


def fit(
    trials: Sequence[Mapping[str, Any]], style: Style, budget: int, *, digest: bool, max_changes: int | None = None
) -> list[str]:
    """Lines for every trial, cut (with a link to the full history) once `budget` characters
    or `max_changes` entries (a change, or a bulk summary) are used; the trials after the cut
    each keep a one-line pointer to their history, whose room is reserved from the start."""

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
        reserve = size([style.more(trial, trial["count"])]) + size(footer) + sum(pointers[position + 1 :])
        left = trial["count"]
        for change in trial["entries"]:
            block = style.change(change)
            if (max_changes is not None and shown >= max_changes) or used + size(block) + reserve > budget:
                out.append(style.more(trial, left))
                full = True
                break
            out.extend(block)
            used += size(block)
            shown += 1
            left -= change["count"]
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
    if change.get("family"):
        return [change["line"], f"  ↳ {change['severity']}: {change['count']} changes in one line"]
    note = f": {change['summary']}" if change["summary"] else ""
    return [change["line"], f"  ↳ {change['severity']}{note}"]


_TEXT = Style(
    trial_header=_text_header,
    change=_text_change,
    more=lambda t, n: f"… and {n} more change{'s' if n != 1 else ''}: full history at {t['history_url']}",
    skipped_trial=lambda t: f"{t['display']}: {t['count']} changes not shown: {t['history_url']}",
    trial_footer=lambda t: ["", f"Study: {t['url']}", f"Full history: {t['history_url']}", ""],
)


def plain_text(ctx: Mapping[str, Any], budget: int = TEXT_LIMIT, max_changes: int | None = None) -> str:
    lines: list[str] = []
    if ctx["test"]:
        lines += ["This is a test message from `trialwatch notify-test`; the changes below are samples.", ""]
    if ctx["delay"]:
        lines += [ctx["delay"], ""]
    if ctx["kind"] in ("changes", "digest"):
        if ctx["kind"] == "digest":
            lines += [f"Changes since {ctx['since']}, most severe first.", ""]
        lines += fit(ctx["trials"], _TEXT, budget, digest=ctx["kind"] == "digest", max_changes=max_changes)
    else:
        lines += [str(ctx.get("text") or "")]
    return "\n".join(lines).strip()


def text(ctx: Mapping[str, Any]) -> Rendered:
    return Rendered(title=ctx["title"], parts=(ctx["body_text"],), body_format="text")
