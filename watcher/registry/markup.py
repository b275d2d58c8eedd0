"""Texts that differ only in markup: API v2's markdown against the record-history endpoints' HTML.

API v2 gives `markup` fields (summaries, eligibility criteria, …) as CommonMark (the spec's
`markupFormat=markdown`); the website's record-history endpoints give the same fields as HTML, with
its own touches: `/` and `'` as `&#x2F;` `&#x27;`, line breaks between tags, `<ol><li>` where the
markdown says `1. ` (cthist's tests, commit 307e1c7). Comparing the two as strings would report
every such text as edited on backfill.

Both sides are reduced to what a reader sees: the markdown is rendered by a CommonMark renderer
(markdown-it-py, the library rich already uses) and every HTML is read by the standard library's
HTML parser, keeping the text (entities decoded, so `<`, `>` and `&` written in the text stay),
each block's boundary as one space, and a link's target where it differs from its words. Runs of
whitespace count as one space; nothing else is dropped or folded: a changed letter, case, digit,
punctuation mark or link target is a real edit and stays one.

A history text that really differs is turned back into markdown (`as_markdown`: markdownify for the
HTML, then every line that shows the same text as a line of the newer markdown takes that line), so
an edit is diffed as markdown like every other version, and only its edited lines can differ.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from functools import lru_cache
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

# Elements whose boundaries separate words: a paragraph or list item ends, the text goes on after a space.
_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "caption",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
_LINK_MARK = "\x00"  # joins a link's words and target in the reduced text; never in a real text


class _Visible(HTMLParser):
    """Collects the text a reader sees, block boundaries as spaces, link targets kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._links: list[tuple[str, int]] = []  # (href, index of the link's first part)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append(" ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self.parts)))
        elif tag == "img":
            self.parts.append(dict(attrs).get("alt") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append(" ")
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            words = " ".join("".join(self.parts[start:]).split())
            target = unquote(href)
            if target and target not in {words, f"mailto:{words}"}:
                self.parts.append(f"{_LINK_MARK}{target}{_LINK_MARK}")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(text: str) -> str:
    """What a reader sees of `text` read as HTML (plain text reads as itself, entities decoded)."""
    parser = _Visible()
    parser.feed(text)
    parser.close()
    return " ".join("".join(parser.parts).split())


@lru_cache(maxsize=1)
def _commonmark() -> MarkdownIt:
    from markdown_it import MarkdownIt  # imported when a history is read: every `check` imports this module

    return MarkdownIt("commonmark")


def markdown_text(text: str) -> str:
    """What a reader sees of `text` read as CommonMark (rendered, then read as HTML)."""
    return html_text(_commonmark().render(text))


def same_text(reference: str, value: str) -> bool:
    """Do `reference` (markdown from API v2, or HTML from an older history answer) and `value` (HTML
    from the record history) show a reader the same text? Exact, not fuzzy: see the module docstring."""
    if reference == value:
        return True
    seen = html_text(value)
    return seen == markdown_text(reference) or seen == html_text(reference)


def is_html(text: str) -> bool:
    """Does `text` hold an element or an entity (so reading it as HTML changes what it says)?"""
    return html_text(text) != " ".join(text.split())


def as_markdown(reference: str | None, value: str) -> str:
    """`value` (HTML from the record history) as markdown, lines aligned on `reference` (the newer
    markdown at the same place): a line that shows the same text as one of the reference's is that line."""
    from markdownify import markdownify  # BeautifulSoup behind it: ~0.1 s that only a backfill needs

    converted = markdownify(
        value, bullets="*", heading_style="ATX", escape_asterisks=False, escape_underscores=False, escape_misc=False
    ).strip("\n")
    if not reference:
        return converted
    ours, theirs = converted.split("\n"), reference.split("\n")
    key = [markdown_text(line.strip()) for line in ours]
    matcher = SequenceMatcher(None, key, [markdown_text(line.strip()) for line in theirs], autojunk=False)
    out: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        out.extend(theirs[j1:j2] if tag == "equal" else ours[i1:i2])
    return "\n".join(out)
