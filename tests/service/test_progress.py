"""Progress: a rich bar on a terminal, throttled `poll.progress` events elsewhere."""

from __future__ import annotations

import io

from structlog.testing import capture_logs

from watcher.service.progress import poll_progress


def test_events_when_not_a_terminal_are_throttled_and_end_with_the_total() -> None:
    now = [0.0]
    reporter = poll_progress(stream=io.StringIO(), interval=10, clock=lambda: now[0])
    with capture_logs() as logs, reporter as progress:
        for done in range(0, 101):
            now[0] = done * 0.5  # 50 s in all: an event every 10 s
            progress(done, 100)
        progress(100, 100)
    events = [e for e in logs if e["event"] == "poll.progress"]
    assert [e["done"] for e in events] == [0, 20, 40, 60, 80, 100]
    assert events[-1] == {"event": "poll.progress", "done": 100, "total": 100, "percent": 100.0, "log_level": "info"}


def test_a_terminal_gets_a_bar_and_no_events() -> None:
    out = io.StringIO()
    with capture_logs() as logs, poll_progress(tty=True, stream=out) as progress:
        for done in range(11):
            progress(done, 10)
    assert not logs
    assert "Polling ClinicalTrials.gov" in out.getvalue()
    assert "10/10" in out.getvalue()


def test_tty_is_detected_from_the_stream() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    with capture_logs() as logs, poll_progress(stream=Tty()) as progress:
        progress(1, 2)
    assert not logs
