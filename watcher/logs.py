"""structlog set-up: JSON lines for journald, a readable console on a terminal.

Under systemd (JOURNAL_STREAM set) each JSON line starts with a `<N>` syslog priority
prefix, which journald strips and turns into the entry's priority, so `journalctl -p warning`
works without a journald library.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

_PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}


def _journald_prefix(_logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    event_dict["_priority"] = _PRIORITY.get(method, 6)
    return event_dict


def _render_with_prefix(renderer: structlog.processors.JSONRenderer) -> Any:
    def render(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        priority = event_dict.pop("_priority", 6)
        rendered = renderer(logger, method, event_dict)
        text = rendered.decode() if isinstance(rendered, bytes) else rendered
        return f"<{priority}>{text}"

    return render


def choose_format(stream: TextIO, environ: Mapping[str, str] = os.environ) -> str:
    if environ.get("JOURNAL_STREAM"):
        return "journald"
    return "console" if stream.isatty() else "json"


def configure(level: str = "info", fmt: str | None = None, stream: TextIO | None = None) -> str:
    """Configure structlog once per process; returns the format chosen."""
    stream = stream or sys.stderr
    fmt = fmt or choose_format(stream)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        processors = [*shared[:-1], renderer]
    elif fmt == "journald":
        processors = [_journald_prefix, *shared, _render_with_prefix(structlog.processors.JSONRenderer())]
    else:
        processors = [*shared, structlog.processors.JSONRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    return fmt
