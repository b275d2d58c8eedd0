"""Chat formats: Slack (compact Markdown that apprise turns into mrkdwn) and Telegram (HTML,
split into numbered parts within Telegram's 4,096-character limit)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from watcher.detect.describe import SPACING_ONLY, format_value, render_diff
from watcher.notify.formats.context import ChangeContext, Context, Entry, SummaryEntry, TrialContext
from watcher.notify.formats.text import Rendered, Style, fit
from watcher.notify.formats.text import escape as _e

TELEGRAM_LIMIT = 4096
TELEGRAM_MAX_PARTS = 4
SLACK_LIMIT = 3500

_SLACK_MARK = {"critical": ":red_circle:", "major": ":large_orange_circle:", "minor": ":white_circle:"}
_TELEGRAM_MARK = {"critical": "🔴", "major": "🟠", "minor": "⚪"}


# -- Slack ---------------------------------------------------------------------------------------

_SLACK_UNSAFE = str.maketrans({"<": "‹", ">": "›", "*": "∗", "`": "ʹ", "[": "(", "]": ")"})


def _slack(text: object) -> str:
    """A value made inert for Markdown → mrkdwn (apprise escapes `&` itself)."""
    return str(text).translate(_SLACK_UNSAFE)


def _slack_header(trial: TrialContext, digest: bool) -> list[str]:
    label = f" {_slack(trial.label)}" if trial.label else ""
    title = f" — {_slack(format_value(trial.title, width=90))}" if trial.title else ""
    return [f"**[{trial.nct_id}]({trial.url})**{label}{title}"]


def _values(change: ChangeContext, marks: tuple[str, str, str, str], escape: Callable[[object], str]) -> str:
    """`old → new`, or the word diff of a long text with removed and added words between `marks`."""
    if change.sentence:
        return escape(change.new_text)
    if change.diff is not None:
        return render_diff(change.diff, marks, escape) if change.diff else SPACING_ONLY
    if change.old_text == change.new_text:
        return SPACING_ONLY
    return f"{escape(change.old_text)} → {escape(change.new_text)}"


_SLACK_DIFF = ("~", "~", "*", "*")
_HTML_DIFF = ("<del>", "</del>", "<ins>", "</ins>")


def _slack_change(entry: Entry) -> list[str]:
    mark = _SLACK_MARK.get(entry.severity, "")
    if isinstance(entry, SummaryEntry):
        return [f"{mark} {_slack(entry.summary)}"]
    summary = f" — {_slack(entry.summary)}" if entry.summary else ""
    return [f"{mark} **{_slack(entry.label)}**: {_values(entry, _SLACK_DIFF, _slack)}{summary}"]


_SLACK = Style(
    trial_header=_slack_header,
    change=_slack_change,
    more=lambda t, n: f"… {n} more: [full history]({t.history_url})",
    skipped_trial=lambda t: f"[{t.nct_id}]({t.history_url}): {t.count} more changes",
    trial_footer=lambda t: [f"[{t.history_label}]({t.history_url})"],
)


def slack(ctx: Context) -> Rendered:
    lines: list[str] = []
    if ctx.delay:
        lines.append(f"_{_slack(ctx.delay)}_")
    if ctx.kind in ("changes", "digest"):
        lines += fit(ctx.trials, _SLACK, SLACK_LIMIT, digest=ctx.kind == "digest")
    else:
        lines.append(_slack(ctx.text or ""))
    return Rendered(title=ctx.title, parts=("\n".join(lines),), body_format="markdown")


# -- Telegram ------------------------------------------------------------------------------------


def _telegram_header(trial: TrialContext, digest: bool) -> list[str]:
    label = f" · {_e(trial.label)}" if trial.label else ""
    count = trial.count
    lines = [
        f'<b><a href="{_e(trial.url)}">{_e(trial.nct_id)}</a></b>{label} — {count} change{"s" if count != 1 else ""}'
    ]
    if trial.title:
        lines.append(f"<i>{_e(format_value(trial.title, width=200))}</i>")
    return lines


def _telegram_change(entry: Entry) -> list[str]:
    mark = _TELEGRAM_MARK.get(entry.severity, "")
    if isinstance(entry, SummaryEntry):
        return [f"{mark} {_e(entry.summary)}"]
    line = [f"{mark} <b>{_e(entry.label)}</b>: {_values(entry, _HTML_DIFF, _e)}"]
    if entry.summary:
        line.append(f"    <i>{_e(entry.summary)}</i>")
    return line


_TELEGRAM = Style(
    trial_header=_telegram_header,
    change=_telegram_change,
    more=lambda t, n: f'… {n} more: <a href="{_e(t.history_url)}">full history</a>',
    skipped_trial=lambda t: f'<a href="{_e(t.history_url)}">{_e(t.nct_id)}</a>: {t.count} more changes',
    trial_footer=lambda t: [f'<a href="{_e(t.history_url)}">{_e(t.history_label)}</a>', ""],
)


_HTML_TOKEN = re.compile(r"<[^<>]*>|&#?[A-Za-z0-9]{1,32};|.", re.DOTALL)
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^<>]*?(/?)>")


def _tags_after(token: str, open_tags: list[str]) -> list[str]:
    tag = _HTML_TAG.fullmatch(token) if token.startswith("<") else None
    if tag is None or tag.group(3):
        return open_tags
    name = tag.group(2).lower()
    if not tag.group(1):
        return [*open_tags, name]
    return open_tags[:-1] if open_tags and open_tags[-1] == name else open_tags


def cut_html(line: str, limit: int) -> str:
    """The start of `line` in at most `limit` characters, ended by `…` and the closing tags of the
    elements still open: never inside a tag or an entity (Telegram refuses such a message whole)."""
    if len(line) <= limit:
        return line
    open_tags: list[str] = []
    end = 0
    for token in _HTML_TOKEN.finditer(line):
        after = _tags_after(token.group(), open_tags)
        if token.end() + 1 + sum(len(name) + 3 for name in after) > limit:
            break
        end, open_tags = token.end(), after
    return line[:end] + "…" + "".join(f"</{name}>" for name in reversed(open_tags))


def split_lines(lines: Sequence[str], limit: int) -> list[str]:
    """Join lines into chunks of at most `limit` characters, breaking only between lines
    (each line is balanced HTML, so no chunk ever cuts a tag in half); a line longer than a chunk
    is cut by `cut_html`."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for raw in lines:
        line = cut_html(raw, limit)
        if current and size + len(line) + 1 > limit:
            chunks.append("\n".join(current).strip())
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current).strip())
    return [c for c in chunks if c]


def telegram(ctx: Context) -> Rendered:
    lines = [f"<b>{_e(ctx.title)}</b>"]
    if ctx.delay:
        lines.append(f"<i>{_e(ctx.delay)}</i>")
    lines.append("")
    if ctx.kind in ("changes", "digest"):
        budget = TELEGRAM_LIMIT * TELEGRAM_MAX_PARTS - 400
        lines += fit(ctx.trials, _TELEGRAM, budget, digest=ctx.kind == "digest")
    else:
        lines.append(_e(ctx.text or ""))
    marker = len(" (9/9)")
    parts = split_lines(lines, TELEGRAM_LIMIT - marker)
    if len(parts) > 1:
        parts = [f"{part}\n({n}/{len(parts)})" for n, part in enumerate(parts, start=1)]
    return Rendered(title="", parts=tuple(parts), body_format="html")
