"""The HTML pages' one Jinja2 environment, shared by the live web view and the static site.

Autoescape is on for every template and nothing marks registry text safe: a title
`<script>…</script>` is shown as text. Links are made by a `Links` value so the same template
serves both faces: the live view's URLs under its base path, the static site's relative files.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined

STYLESHEET = "style.css"


class Links:
    """URLs of the live view, under `base` (`""` or `/trials-view`, no trailing slash)."""

    static_site = False

    def __init__(self, base: str = "") -> None:
        self.base = base.rstrip("/")

    def home(self, **query: Any) -> str:
        return self._with(f"{self.base}/", query)

    def trial(self, nct_id: str) -> str:
        return f"{self.base}/trials/{quote(nct_id)}"

    def compare(self, nct_id: str, a: int, b: int, **query: Any) -> str:
        return self._with(f"{self.base}/trials/{quote(nct_id)}/compare", {"a": a, "b": b, **query})

    def page(self, name: str, **query: Any) -> str:
        return self._with(f"{self.base}/{name}", query)

    def tag(self, tag: str) -> str:
        return self.home(tag=tag)

    def feed(self, tag: str | None = None) -> str:
        return f"{self.base}/feeds/{quote(tag, safe='')}.atom" if tag else f"{self.base}/feeds/all.atom"

    def static(self, name: str) -> str:
        return f"{self.base}/static/{name}"

    @staticmethod
    def _with(path: str, query: dict[str, Any]) -> str:
        kept = {k: v for k, v in query.items() if v not in (None, "", False)}
        return f"{path}?{urlencode(kept)}" if kept else path


class SiteLinks(Links):
    """Relative links between the static site's files; `depth` folders below its root."""

    static_site = True

    def __init__(self, depth: int = 0) -> None:
        super().__init__("")
        self.root = "../" * depth

    def home(self, **query: Any) -> str:
        return f"{self.root}index.html"

    def trial(self, nct_id: str) -> str:
        return f"{self.root}trials/{quote(nct_id)}.html"

    def tag(self, tag: str) -> str:
        return f"{self.root}tags/{quote(site_name(tag), safe='')}.html"

    def feed(self, tag: str | None = None) -> str:
        return f"{self.root}feeds/{quote(site_name(tag), safe='')}.atom" if tag else f"{self.root}feeds/all.atom"

    def static(self, name: str) -> str:
        return f"{self.root}static/{name}"


def site_name(tag: str) -> str:
    """A tag as a file name: letters, digits, `-_.` kept, anything else `-`."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in tag).strip("-.")
    return safe or "tag"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "—"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("watcher.views", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["day"] = _day
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def static_text(name: str) -> str:
    """A vendored asset of `watcher/views/static` (our own CSS and script: nothing from a CDN)."""
    from importlib.resources import files

    return files("watcher.views").joinpath("static", name).read_text(encoding="utf-8")
