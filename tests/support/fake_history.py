"""The record-history endpoints' text as the live site serves it: HTML, where API v2 gives markdown.

As the cthist R package's tests show (commit 307e1c7): `/api/int/studies/{nct}?history=true` and `/history/{v}` give the
`markup` fields as HTML (`<p>…</p><ul><li>…`, `<ol><li>` for markdown's `1. `), with `/` and `'`
written `&#x2F;` `&#x27;` (the 2023 capture) and, since 2025, line breaks between tags (cthist NEWS
2.1.12). The fake renders the real records' markdown that way: CommonMark (what the spec says API v2's
markdown is) through markdown-it-py, text escaped as the site escapes it.

Used by `tests/support/fakeapi.py`'s `RecordHistory` and by the property tests in `tests/registry/test_markup.py`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

# Where API v2 has `markup` fields (type "markup" in the data dictionary); "*" is every item of a list.
MARKUP_FIELDS: tuple[tuple[str, ...], ...] = (
    ("protocolSection", "descriptionModule", "briefSummary"),
    ("protocolSection", "descriptionModule", "detailedDescription"),
    ("protocolSection", "eligibilityModule", "eligibilityCriteria"),
    ("protocolSection", "armsInterventionsModule", "armGroups", "*", "description"),
    ("protocolSection", "armsInterventionsModule", "interventions", "*", "description"),
    ("protocolSection", "outcomesModule", "primaryOutcomes", "*", "description"),
    ("protocolSection", "outcomesModule", "secondaryOutcomes", "*", "description"),
    ("protocolSection", "outcomesModule", "otherOutcomes", "*", "description"),
    ("resultsSection", "moreInfoModule", "limitationsAndCaveats", "description"),
)

_SITE_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "/": "&#x2F;"}


def _site_escape(text: str) -> str:
    return "".join(_SITE_ESCAPES.get(ch, ch) for ch in text)


def _text_rule(_renderer: Any, tokens: Sequence[Token], idx: int, _options: OptionsDict, _env: EnvType) -> str:
    return _site_escape(tokens[idx].content)


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark")
    md.add_render_rule("text", _text_rule)
    return md


_MD = _renderer()


def render_html(markdown: str, *, line_breaks: bool = True) -> str:
    """`markdown` as the history endpoints serve it; without `line_breaks`, as they did before 2025."""
    rendered = _MD.render(markdown).strip()
    return rendered if line_breaks else rendered.replace(">\n<", "><")


def markup_values(study: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(dotted path, text) of every markup field the record has."""
    for path in MARKUP_FIELDS:
        yield from _walk(study, path, "")


def _walk(node: Any, path: tuple[str, ...], where: str) -> Iterator[tuple[str, str]]:
    if not path:
        if isinstance(node, str):
            yield where.lstrip("."), node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for number, item in enumerate(node if isinstance(node, list) else []):
            yield from _walk(item, rest, f"{where}.{number}")
    elif isinstance(node, Mapping) and head in node:
        yield from _walk(node[head], rest, f"{where}.{head}")


def set_value(study: dict[str, Any], dotted: str, value: str) -> None:
    *parents, last = dotted.split(".")
    node: Any = study
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value


def as_history(study: Mapping[str, Any], *, line_breaks: bool = True) -> dict[str, Any]:
    """A copy of an API v2 record with its markup fields as the record-history endpoints give them."""
    out = copy.deepcopy(dict(study))
    for dotted, text in list(markup_values(out)):
        set_value(out, dotted, render_html(text, line_breaks=line_breaks))
    return out
