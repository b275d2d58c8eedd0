"""mkdocs hook: the reference pages' tables, generated at build time from the code's own definitions.

A page holds a marker such as `<!-- generated: settings -->`; the build puts the table there, so
the published reference cannot drift from what the parser takes (tests/meta/test_docs.py checks the
markers are in place and that the tables cover every key).
"""

from __future__ import annotations

from typing import Any

from watcher.config.reference import markdown_table, settings_reference, watchlist_reference

GENERATED = {
    "<!-- generated: settings -->": lambda: markdown_table(settings_reference()),
    "<!-- generated: watchlist -->": lambda: markdown_table(watchlist_reference()),
}


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, make in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
