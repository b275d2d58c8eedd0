"""What every format shares: `Rendered`, the fitting of long change lists into a budget, and the
plain-text body (which is also the `text` format, and every message's `body_text`)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from watcher.models import Json
from watcher.notify.formats.context import Context, Entry, SummaryEntry, TrialContext

TEXT_LIMIT = 30000


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


_BREAKS = re.compile("[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def one_line(value: object) -> str:
    """A value on one line: line breaks (CR, LF and Unicode's) become a space, other control characters
    go. Record text is third-party input: a title holding `\r\nStatus: COMPLETED` must not forge a line
    of a plain-text body, nor an escape sequence reach a terminal."""
    return _CONTROLS.sub("", _BREAKS.sub(" ", str(value)))


_MENTION = re.compile(r"@(?=everyone|here)|<@(?=[!&]?\d)", re.IGNORECASE)


def without_mentions(text: str) -> str:
    """`text` with Discord's mass and user/role mentions made inert by a zero-width space after the
    `@` (`@everyone`, `@here`, `<@123>`, `<@&123>`): a record's text must not ping a whole server.
    apprise sends no `allowed_mentions` unless a ping is configured, so the text itself is defused."""
    return _MENTION.sub(lambda found: found.group() + "\u200b", text)


def escape(value: object) -> str:
    """A value as HTML text (email and Telegram)."""
    return html.escape(str(value), quote=True)


# -- fitting long messages -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Style:
    """How one format writes the pieces of a change list."""

    trial_header: Callable[[TrialContext, bool], list[str]]
    change: Callable[[Entry], list[str]]
    more: Callable[[TrialContext, int], str]
    skipped_trial: Callable[[TrialContext], str]
    trial_footer: Callable[[TrialContext], list[str]]


def fit(
    trials: Sequence[TrialContext], style: Style, budget: int, *, digest: bool, max_changes: int | None = None
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
        reserve = size([style.more(trial, trial.count)]) + size(footer) + sum(pointers[position + 1 :])
        left = trial.count
        for entry in trial.entries:
            block = style.change(entry)
            if (max_changes is not None and shown >= max_changes) or used + size(block) + reserve > budget:
                out.append(style.more(trial, left))
                full = True
                break
            out.extend(block)
            used += size(block)
            shown += 1
            left -= entry.count
        out.extend(footer)
        used += size(footer)
    return out


# -- plain text ----------------------------------------------------------------------------------


def _text_header(trial: TrialContext, digest: bool) -> list[str]:
    count = trial.count
    version = f", version {trial.version}" if trial.version else ""
    lines = [f"{one_line(trial.display)}: {count} change{'s' if count != 1 else ''}{version}"]
    if trial.title:
        lines.append(one_line(trial.title))
    return [*lines, ""]


def _text_change(entry: Entry) -> list[str]:
    if isinstance(entry, SummaryEntry):
        return [one_line(entry.line), f"  ↳ {entry.severity}: {entry.count} changes in one line"]
    note = f": {one_line(entry.summary)}" if entry.summary else ""
    return [one_line(entry.line), f"  ↳ {entry.severity}{note}"]


_TEXT = Style(
    trial_header=_text_header,
    change=_text_change,
    more=lambda t, n: f"… and {n} more change{'s' if n != 1 else ''}: full history at {t.history_url}",
    skipped_trial=lambda t: f"{one_line(t.display)}: {t.count} changes not shown: {t.history_url}",
    trial_footer=lambda t: ["", f"Study: {t.url}", f"{t.history_label}: {t.history_url}", ""],
)


def plain_text(ctx: Context, budget: int = TEXT_LIMIT, max_changes: int | None = None) -> str:
    lines: list[str] = []
    if ctx.test:
        lines += ["This is a test message from `trialwatch notify-test`; the changes below are samples.", ""]
    if ctx.delay:
        lines += [ctx.delay, ""]
    if ctx.kind in ("changes", "digest"):
        if ctx.kind == "digest":
            lines += [f"Changes since {ctx.since}, most severe first.", ""]
        lines += fit(ctx.trials, _TEXT, budget, digest=ctx.kind == "digest", max_changes=max_changes)
    else:
        lines += [ctx.text or ""]
    return "\n".join(lines).strip()


def text(ctx: Context) -> Rendered:
    return Rendered(title=ctx.title, parts=(ctx.body_text,), body_format="text")
