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


def connected_to_journal(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """True when `stream` *is* the journal stream systemd gave us (`$JOURNAL_STREAM` is `dev:inode`).

    Comparing device and inode, as systemd's documentation asks, keeps a child whose stderr was
    redirected to a file from writing `<6>` prefixes into that file just because it inherited the variable.
    """
    value = environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def choose_format(stream: TextIO, environ: Mapping[str, str] = os.environ) -> str:
    if connected_to_journal(stream, environ):
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
    _route_stdlib_logging(level, shared, processors[-1], journald=fmt == "journald", stream=stream)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    return fmt


def _route_stdlib_logging(level: str, shared: list[Any], renderer: Any, *, journald: bool, stream: TextIO) -> None:
    """Libraries log through `logging` (APScheduler's missed-run warnings, for one); give their records
    the same format as ours so a journald line is never half JSON, half plain text."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([_journald_prefix] if journald else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_trialwatch", False)]:
        root.removeHandler(old)
    handler._trialwatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # Third-party INFO chatter (every APScheduler job run) is noise in a service log.
    root.setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()]))
