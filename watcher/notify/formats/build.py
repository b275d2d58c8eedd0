"""From a typed payload to the `Context` every format reads: changes in words, in clinical
priority order, bulk list changes summarised, the headline, the title and the plain-text body.

Nothing here does I/O or reads the clock: the delivery time comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from watcher.detect.describe import (
    change_diff,
    change_texts,
    change_values,
    event_sentence,
    field_label,
    format_value,
    split_site,
)
from watcher.detect.priority import order_key
from watcher.messages import ChangesPayload, DigestPayload, DigestTrial, Payload
from watcher.models import (
    SEVERITY_RANK,
    Change,
    Event,
    Json,
    change_to_dict,
    compare_url,
    registry_changes_url,
    study_url,
)
from watcher.notify.formats.bulk import summarise
from watcher.notify.formats.context import ChangeContext, Context, Delivery, Entry, SummaryEntry, TrialContext
from watcher.notify.formats.text import plain_text
from watcher.times import minute

SUMMARY_WIDTH = 300


def _rank(severity: str | None) -> int:
    return SEVERITY_RANK.get(str(severity), 0)


def _spelled(event: Event | None) -> Mapping[str, Json] | None:
    """A site's facility and address as the record spells them, when the change's event carries them."""
    return event.data if event is not None and isinstance(event.data.get("site"), str) else None


def _sites(changes: Sequence[Change]) -> dict[str, Mapping[str, Json]]:
    """Site key → the site as the record spells it, from the events of one trial's changes: a change
    stored before every site change had an event borrows the spelling of its site's other changes."""
    out: dict[str, Mapping[str, Json]] = {}
    for change in changes:
        spelled = _spelled(change.event)
        if spelled is not None and (spelled.get("facility") or str(spelled["site"]) not in out):
            out[str(spelled["site"])] = spelled
    return out


def change_context(change: Change, site: Mapping[str, Json] | None = None) -> ChangeContext:
    """One change as people read it; `site` (as the record spells it) names its site when the change's
    own event does not."""
    stored = change_to_dict(change)  # the form `detect.describe` and `detect.priority` read
    old_text, new_text = change_texts(stored)
    event = change.event
    summary = format_value(event.summary, width=SUMMARY_WIDTH) if event and event.summary else None
    if summary and ": " in summary:
        head, _, tail = summary.partition(": ")
        value = change.new if change.change != "removed" else change.old
        if isinstance(value, str) and len(value) > 40 and format_value(value, width=40)[:30] == tail[:30]:
            summary = head  # "Exclusion criterion reworded", not the criterion a second time
    label = field_label(change.field, _spelled(event) or site)
    line, diff, sentence = f"{label}: {change_values(stored)}", change_diff(stored), False
    if event_sentence(stored) and summary:
        old_text, new_text, diff, sentence, summary = "", summary, None, True, None
    return ChangeContext(
        field=change.field,
        change=change.change,
        old=change.old,
        new=change.new,
        old_text=old_text,
        new_text=new_text,
        diff=diff,
        sentence=sentence,
        severity=change.severity,
        event=event,
        summary=summary,
        line=line,
        rank=order_key(stored),
        label=label,
    )


def trial_context(item: ChangesPayload | DigestTrial) -> TrialContext:
    """One trial's part of a message, its changes in clinical priority order (`detect.priority`),
    severity breaking ties; the trial's severity is that of its most severe change."""
    sites = _sites(item.changes)
    contexts = (
        change_context(c, sites.get(split_site(c.field)[0]) if c.field.startswith("locations.") else None)
        for c in item.changes
    )
    changes = tuple(sorted(contexts, key=lambda c: c.rank))
    entries = tuple(summarise(changes))
    summarised = {f: e.family for e in entries if isinstance(e, SummaryEntry) for f in e.fields}
    nct_id, label = item.nct_id, item.label
    return TrialContext(
        nct_id=nct_id,
        label=label,
        title=item.title,
        display=f"{nct_id} ({label})" if label else nct_id,
        url=item.url or study_url(nct_id),
        history_url=item.history_url or registry_changes_url(nct_id, item.compared),
        version=item.version,
        detected_at=item.detected_at,
        severity=max((c.severity for c in changes), key=_rank, default=None),
        count=len(changes),
        changes=changes,
        entries=entries,
        summarised=summarised,
        compare_url=compare_url(nct_id, *item.compared) if item.compared is not None else None,
    )


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


def _headline(entry: Entry | None) -> str:
    if entry is None:
        return ""
    if isinstance(entry, SummaryEntry):
        return entry.summary
    return entry.summary or (entry.new_text if entry.sentence else entry.line)


def context(payload: Payload, delivery: Delivery) -> Context:
    """The facts of every format and template (documented in docs/how-to/notifications.md, "Templates")."""
    late = delivery.now - delivery.created_at
    delay = None
    if late >= delivery.delay_note_after:
        delay = f"Delayed delivery: queued {minute(delivery.created_at)}, sent {_duration(late)} later."
    ctx = Context(
        payload=payload,
        kind=payload.kind,
        channel=delivery.channel,
        message_id=delivery.message_id,
        created_at=delivery.created_at.isoformat(),
        sent_at=delivery.now.isoformat(),
        delay=delay,
        delay_seconds=max(int(late.total_seconds()), 0),
        test=isinstance(payload, ChangesPayload) and payload.test is True,
    )
    if isinstance(payload, ChangesPayload | DigestPayload):
        trials = [trial_context(t) for t in (payload.trials if isinstance(payload, DigestPayload) else [payload])]
        if isinstance(payload, DigestPayload):
            trials.sort(key=lambda t: (-_rank(t.severity), t.nct_id))
        flat = tuple(c for t in trials for c in t.changes)
        top = min((e for t in trials for e in t.entries[:1]), key=lambda e: e.rank, default=None)
        ctx = replace(
            ctx,
            trials=tuple(trials),
            trial=trials[0] if trials else None,
            changes=flat,
            count=len(flat),
            severity=max((c.severity for c in flat), key=_rank, default=None),
            headline=_headline(top),
            since=payload.since if isinstance(payload, DigestPayload) else None,
            until=payload.until if isinstance(payload, DigestPayload) else None,
        )
    else:
        ctx = replace(ctx, subject=payload.subject, text=payload.text)
    ctx = replace(ctx, title=default_title(ctx))
    return replace(ctx, body_text=plain_text(ctx))


def default_title(ctx: Context) -> str:
    prefix = "[test] " if ctx.test else ""
    if ctx.kind == "changes" and ctx.trial:
        more = ctx.count - 1
        title = f"{ctx.trial.display}: {ctx.headline}" + (f" (+{more} more)" if more > 0 else "")
    elif ctx.kind == "digest":
        count, trials = ctx.count, len(ctx.trials)
        title = (
            f"TrialWatch digest: {count} change{'s' if count != 1 else ''} in {trials} "
            f"trial{'s' if trials != 1 else ''}"
        )
    else:
        title = str(ctx.subject or "TrialWatch")
    return format_value(prefix + title, width=200)
