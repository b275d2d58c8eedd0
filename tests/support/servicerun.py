"""A real `trialwatch run` process for the service tests, with a real NOTIFY_SOCKET listening to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.peers import wait_until
from tests.support.workspace import REPO, Workspace

FAST_SCHEDULE = """\
  interval: 2s
  watch_interval: 1s
  notify_interval: 1s
  stop_timeout: 5s
"""


def fast_settings(workspace: Workspace, schedule: str = FAST_SCHEDULE) -> None:
    """Turn the workspace's settings into a quick service: 2 s polls, 1 s file checks and notify ticks."""
    text = workspace.settings.read_text()
    workspace.settings.write_text(text.replace("  interval: 1h\n", schedule))


@dataclass
class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's; records every message it receives."""

    address: str  # as NOTIFY_SOCKET spells it: a path, or @name for the abstract namespace
    sock: socket.socket
    messages: list[tuple[float, str]] = field(default_factory=list)
    _thread: threading.Thread | None = None

    @classmethod
    def open(cls, *, abstract: bool = False) -> NotifySocket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"trialwatch-test-{os.getpid()}-{time.monotonic_ns()}"
            sock.bind("\0" + name)
            address = "@" + name
        else:
            # sun_path holds 108 bytes: a short directory, not pytest's long tmp_path
            address = os.path.join(tempfile.mkdtemp(prefix="tw-"), "notify")
            sock.bind(address)
        sock.settimeout(0.2)
        notify = cls(address, sock)
        notify._thread = threading.Thread(target=notify._receive, daemon=True)
        notify._thread.start()
        return notify

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)
            Path(self.address).parent.rmdir()

    def assignments(self) -> list[dict[str, str]]:
        return [dict(line.split("=", 1) for line in text.split("\n")) for _, text in self.messages]

    def wait_for(self, key: str, value: str | None = None, timeout: float = 20) -> dict[str, str]:
        def found() -> dict[str, str] | None:
            for message in self.assignments():
                if key in message and (value is None or message[key] == value):
                    return message
            return None

        return wait_until(found, timeout=timeout)  # type: ignore[no-any-return]


class Service:
    """`python -m watcher --config … run` as systemd would start it."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        notify: NotifySocket | None = None,
        env: dict[str, str] | None = None,
        piped: bool = False,
    ) -> None:
        """`piped`: the log reaches its file through a pipe and a thread of this process, so a file-size
        limit set on the service (a full disk) does not stop it logging."""
        self.workspace = workspace
        self.notify = notify
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        full_env.pop("JOURNAL_STREAM", None)
        if notify is not None:
            full_env["NOTIFY_SOCKET"] = notify.address
        self.stdout_path = workspace.root / "service.out"
        self.stderr_path = workspace.root / "service.err"
        self._copier: threading.Thread | None = None
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "watcher", "--config", str(workspace.settings), "--log-format", "json", "run"],
                stdout=out,
                stderr=subprocess.PIPE if piped else err,
                env=full_env,
            )
        if piped:
            self._copier = threading.Thread(target=self._copy_log, daemon=True)
            self._copier.start()

    def _copy_log(self) -> None:
        assert self.proc.stderr is not None
        with self.stderr_path.open("ab", buffering=0) as log:
            for line in self.proc.stderr:
                log.write(line)
        self.proc.stderr.close()

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stderr_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == event]

    def wait_event(self, event: str, timeout: float = 20, count: int = 1) -> list[dict[str, Any]]:
        def seen() -> list[dict[str, Any]] | None:
            assert self.proc.poll() is None, f"service exited early:\n{self.stderr_path.read_text()}"
            found = self.named(event)
            return found if len(found) >= count else None

        return wait_until(seen, timeout=timeout)  # type: ignore[no-any-return]

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took)."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._join_copier()
        return code, time.monotonic() - start

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._join_copier()

    def _join_copier(self) -> None:
        if self._copier is not None:
            self._copier.join(timeout=10)


def running(workspace: Workspace, **kwargs: Any) -> Iterator[Service]:
    service = Service(workspace, **kwargs)
    try:
        yield service
    finally:
        service.kill()
