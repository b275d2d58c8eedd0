"""Signals, handled so that they can land anywhere: in the middle of a log line, inside a lock.

A Python signal handler runs in the main thread between two bytecodes, possibly while that thread
holds a lock — structlog's output lock mid-line, or the lock inside `threading.Event`. A handler
that logs or sets an Event can then wait forever on a lock its own thread holds, and the stop
hangs until systemd kills the service. So handlers here only append to a list and write one byte
to a pipe (`Wakeup`); the main loop does the rest, outside the handler.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from types import FrameType


class Wakeup:
    """Wakes the main loop from other threads and from signal handlers: a self-pipe, no lock.

    The pipe lives as long as the process: a late signal must never write into a reused fd."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe already says "wake up"
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> bool:
        """Sleep until `set` or `timeout` seconds; True when woken. Pending wake-ups are consumed."""
        ready, _, _ = select.select([self._read], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        return bool(ready)


class StopSignals:
    """Which stop signals arrived (TERM, INT), recorded without a lock; the first asks for a
    clean stop, a second one for a forced stop that does not wait for the cycle in flight."""

    def __init__(self, wake: Wakeup) -> None:
        self.received: list[int] = []
        self._wake = wake

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)  # list.append is atomic and takes no Python-level lock
        self._wake.set()

    @property
    def requested(self) -> bool:
        return bool(self.received)

    @property
    def forced(self) -> bool:
        return len(self.received) > 1

    @property
    def first(self) -> str:
        return signal.Signals(self.received[0]).name if self.received else ""
