"""The email format: subject with NCT ID, label and the most important change; an HTML table of
old/new values plus our own plain-text alternative (not guessed from the HTML)."""

from __future__ import annotations

from collections.abc import Sequence

from watcher.detect.describe import SPACING_ONLY, render_diff
from watcher.notify.formats.context import ChangeContext, Context, Entry, SummaryEntry, TrialContext
from watcher.notify.formats.text import Rendered, plain_text
from watcher.notify.formats.text import escape as _e

EMAIL_MAX_CHANGES = 200

EMAIL_PLAIN_MAX_ENTRIES = 25
"""Entries (changes or bulk summaries, two lines each) in the plain-text part before it links the
full history: with the header and footer the part stays under ~60 lines."""

_EMAIL_COLOR = {"critical": "#b3261e", "major": "#b26a00", "minor": "#5f6368"}


def _cells(change: ChangeContext) -> tuple[str, str]:
    """The Old and New cells: a long text as its word diff, removed words in <del> on the old
    side and added words in <ins> on the new side; two sides that read the same say so once."""
    diff = change.diff
    if change.sentence:
        return "", _e(change.new_text)
    if diff is not None:
        if not diff:
            return "", _e(SPACING_ONLY)
        old = render_diff([s for s in diff if s[0] != "+"], ("<del>", "</del>", "", ""), _e)
        new = render_diff([s for s in diff if s[0] != "-"], ("", "", "<ins>", "</ins>"), _e)
        return old, new
    if change.old_text == change.new_text:
        return "", _e(SPACING_ONLY)
    return _e(change.old_text), _e(change.new_text)


def _email_trial(trial: TrialContext, changes: Sequence[Entry], omitted: int) -> str:
    cell = "padding:6px 10px;border-bottom:1px solid #e0e0e0;vertical-align:top;text-align:left"
    head = "".join(f'<th style="{cell};background:#f5f5f5">{h}</th>' for h in ("Severity", "Field", "Old", "New"))
    rows = []
    for entry in changes:
        color = _EMAIL_COLOR.get(entry.severity, "#5f6368")
        if isinstance(entry, SummaryEntry):
            rows.append(
                f'<tr><td style="{cell};color:{color};font-weight:bold">{_e(entry.severity)}</td>'
                f'<td style="{cell}" colspan="3">{_e(entry.summary)}</td></tr>'
            )
            continue
        summary = f'<br><span style="color:#5f6368">{_e(entry.summary)}</span>' if entry.summary else ""
        old, new = _cells(entry)
        rows.append(
            f'<tr><td style="{cell};color:{color};font-weight:bold">{_e(entry.severity)}</td>'
            f'<td style="{cell}">{_e(entry.label)}{summary}</td>'
            f'<td style="{cell}">{old}</td><td style="{cell}">{new}</td></tr>'
        )
    more = (
        (
            f"<p>… and {omitted} more change{'s' if omitted != 1 else ''}: "
            f'<a href="{_e(trial.history_url)}">full history</a></p>'
        )
        if omitted
        else ""
    )
    title = f'<p style="margin:0 0 8px">{_e(trial.title)}</p>' if trial.title else ""
    count = trial.count
    version = f", version {_e(trial.version)}" if trial.version else ""
    return (
        f'<h3 style="margin:16px 0 4px"><a href="{_e(trial.url)}">{_e(trial.nct_id)}</a>'
        f"{' · ' + _e(trial.label) if trial.label else ''}</h3>{title}"
        f'<p style="margin:0 0 8px;color:#5f6368">{count} change{"s" if count != 1 else ""}{version}</p>'
        f'<table style="border-collapse:collapse;font-size:14px"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{more}"
        f'<p><a href="{_e(trial.url)}">Study on ClinicalTrials.gov</a> · '
        f'<a href="{_e(trial.history_url)}">{_e(trial.history_label)}</a></p>'
    )


def email(ctx: Context) -> Rendered:
    blocks: list[str] = []
    if ctx.test:
        blocks.append(
            "<p><em>A test message from <code>trialwatch notify-test</code>; the changes are samples.</em></p>"
        )
    if ctx.delay:
        blocks.append(f'<p style="color:#b26a00">{_e(ctx.delay)}</p>')
    if ctx.kind in ("changes", "digest"):
        if ctx.kind == "digest":
            blocks.append(f"<p>Changes since {_e(ctx.since)}, most severe first.</p>")
        budget = EMAIL_MAX_CHANGES
        for trial in ctx.trials:
            shown = trial.entries[: max(budget, 0)]
            budget -= len(shown)
            blocks.append(_email_trial(trial, shown, trial.count - sum(e.count for e in shown)))
    else:
        blocks.append("".join(f"<p>{_e(p)}</p>" for p in (ctx.text or "").split("\n\n")))
    body = '<div style="font-family:Arial,Helvetica,sans-serif;color:#202124">' + "".join(blocks) + "</div>"
    plain = plain_text(ctx, max_changes=EMAIL_PLAIN_MAX_ENTRIES)
    return Rendered(title=ctx.title, parts=(body,), body_format="html", plain=plain)
