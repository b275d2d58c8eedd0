"""User templates for a channel's title and body (Jinja2, sandboxed).

A template sees the same plain context the built-in formats use (see `formats.context`
and docs/how-to/notifications.md, "Templates"). The sandbox keeps a template from reaching Python
internals; HTML channels (email, Telegram) autoescape values so a trial title with `<`
cannot break the message. A template that fails at render time falls back to the
built-in format: a notification with the default look beats none.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from watcher.detect.describe import format_value


@lru_cache(maxsize=8)
def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["value"] = format_value
    return env


def template_problem(source: str) -> str | None:
    """None when the template compiles, else the syntax error with its template line."""
    try:
        _environment(False).from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        return f"template error{f' on template line {line}' if line else ''}: {exc}"
    return None


def render_template(source: str, variables: Mapping[str, Any], *, html: bool) -> str:
    """Render one template; raises TemplateError (the caller falls back and logs it)."""
    return _environment(html).from_string(source).render(**variables).strip()


__all__ = ["TemplateError", "render_template", "template_problem"]
