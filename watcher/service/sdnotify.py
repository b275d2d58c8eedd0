"""The systemd notification protocol (sd_notify) in a few lines of stdlib.

systemd hands a `Type=notify` service the address of an AF_UNIX datagram socket in
`$NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`); each datagram is
newline-separated `KEY=value` assignments such as `READY=1` or `STATUS=…`. Outside systemd the
variable is unset and every call is a no-op, so the service code never asks where it runs.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta

import structlog

log = structlog.get_logger("watcher.service.sdnotify")

EXTEND_EVERY = timedelta(seconds=30)
"""How often a long start-up step tells systemd it goes on (each time for twice as long again)."""


def socket_address(value: str | None) -> str | None:
    """`$NOTIFY_SOCKET` as `socket.sendto` wants it: `@name` is the abstract name `\\0name`."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # vsock:… and other transports are not used by the service managers we support


def watchdog_period(environ: Mapping[str, str], pid: int | None = None) -> timedelta | None:
    """Half of `$WATCHDOG_USEC` (systemd's advice), or None when no watchdog is asked of this process."""
    usec = environ.get("WATCHDOG_USEC")
    owner = environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner.isdigit() and int(owner) != (pid if pid is not None else os.getpid()):
        return None
    return timedelta(microseconds=int(usec) / 2)


class Notifier:
    """Sends state changes to the service manager; silently does nothing when there is none."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.address = socket_address(environ.get("NOTIFY_SOCKET"))
        self._sock: socket.socket | None = None
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, **fields: str | int) -> bool:
        """`send(READY=1, STATUS="…")`; newlines in values would start a new assignment, so they go."""
        if self._sock is None or self.address is None:
            return False
        text = "\n".join(f"{key}={str(value).replace(chr(10), ' ')}" for key, value in fields.items())
        try:
            self._sock.sendto(text.encode("utf-8"), self.address)
        except OSError as exc:
            log.warning("sdnotify.failed", error=str(exc), fields=sorted(fields))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY=1, STATUS=status)

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def reloading(self) -> bool:
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send(RELOADING=1, MONOTONIC_USEC=monotonic_usec)

    @contextmanager
    def starting_slowly(self, status: str) -> Iterator[None]:
        """While the block runs, every `EXTEND_EVERY` tell systemd that start-up goes on
        (`EXTEND_TIMEOUT_USEC`, `STATUS=status`). Opening the database upgrades its schema when it is
        behind: minutes for a whole-registry database (revision 0009 reads each trial's newest
        record), past the unit's `TimeoutStartSec`, and a start killed midway rolls the upgrade back
        for the restart to begin again, forever. A step shorter than `EXTEND_EVERY` sends nothing."""
        if self._sock is None:
            yield
            return
        every = EXTEND_EVERY.total_seconds()
        done = threading.Event()

        def beat() -> None:
            while not done.wait(every):
                self.send(STATUS=status, EXTEND_TIMEOUT_USEC=int(2 * every * 1_000_000))

        beater = threading.Thread(target=beat, name="sd-start-extend", daemon=True)
        beater.start()
        try:
            yield
        finally:
            done.set()
            beater.join()

    def stopping(self, status: str, extend: timedelta | None = None) -> bool:
        fields: dict[str, str | int] = {"STOPPING": 1, "STATUS": status}
        if extend is not None:
            fields["EXTEND_TIMEOUT_USEC"] = int(extend.total_seconds() * 1_000_000)
        return self.send(**fields)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
