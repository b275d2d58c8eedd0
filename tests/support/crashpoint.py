"""Run the real `trialwatch` CLI, stopping dead at one named point of delivery.

    python -m tests.support.crashpoint POINT MARKER -- --config trialwatch.yaml check

At POINT the process writes its pid to MARKER and stops (SIGSTOP) until the test kills it with
SIGKILL, so the database holds exactly what a crash at that point leaves behind:

- after_commit  the new version and its messages are committed; nothing is claimed yet
- before_send   a message is claimed (`sending`) but not handed to the channel
- before_mark   the channel accepted the message; it is not yet marked `sent`
- before_alert  a state change that raises an alert is written, in a transaction still open; the
                alert is about to be queued in it
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

_first = threading.Lock()


def _stop(marker: Path) -> NoReturn:
    """Freeze the whole process (every thread: delivery runs in per-channel workers) until killed.

    Two workers may reach the point at once: the first writes the marker (atomically), and the
    process stops before the other goes any further."""
    if _first.acquire(blocking=False):
        temporary = marker.with_suffix(".tmp")
        temporary.write_text(str(os.getpid()))
        os.replace(temporary, marker)
        os.kill(os.getpid(), signal.SIGSTOP)
    while True:
        time.sleep(60)


def _after_commit(marker: Path) -> None:
    from watcher.store.outbox import OutboxQueue

    def claim_next(self: Any, *args: Any, **kwargs: Any) -> Any:
        _stop(marker)

    OutboxQueue.claim_next = claim_next  # type: ignore[method-assign]


def _before_send(marker: Path) -> None:
    from watcher.notify import send

    def send_one(*args: Any, **kwargs: Any) -> None:
        _stop(marker)

    send.Sender._send_one = staticmethod(send_one)  # type: ignore[method-assign]


def _before_mark(marker: Path) -> None:
    """The first message (the email) only: channels are delivered in parallel."""
    from watcher.store.outbox import OutboxQueue

    real = OutboxQueue.finish_sent

    def finish_sent(self: Any, message_id: int, *args: Any, **kwargs: Any) -> None:
        if message_id == 1:
            _stop(marker)
        real(self, message_id, *args, **kwargs)

    OutboxQueue.finish_sent = finish_sent  # type: ignore[method-assign]


def _before_alert(marker: Path) -> None:
    """Every queued message passes `insert_many_in`, last in its transaction: stop at the first alert."""
    from watcher.store.outbox import OutboxQueue

    real = OutboxQueue.insert_many_in

    def insert_many_in(s: Any, messages: Any) -> None:
        if any(message.kind == "alert" for message, _ in messages):
            _stop(marker)
        real(s, messages)

    OutboxQueue.insert_many_in = staticmethod(insert_many_in)  # type: ignore[method-assign]


POINTS = {
    "after_commit": _after_commit,
    "before_send": _before_send,
    "before_mark": _before_mark,
    "before_alert": _before_alert,
}


def install(point: str, marker: Path) -> None:
    if point not in POINTS:
        raise SystemExit(f"unknown crash point {point!r}")
    POINTS[point](marker)


def main() -> None:
    point, marker, dashdash, *args = sys.argv[1:]
    assert dashdash == "--"
    install(point, Path(marker))
    from watcher.cli.main import main as cli

    cli(args)


if __name__ == "__main__":
    main()
