"""The service under soak: `trialwatch run` as a subprocess, started, stopped and restarted as systemd would.

Each process is an `Incarnation` with log files of its own, which the verdict reads
(`bench/soak_report.py`); one that exits by itself is a crash, noted and replaced at once. Its RSS is
sampled once a second from /proc while it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak_report import Incarnation

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 5.0  # the service's schedule.stop_timeout, in seconds


@dataclass
class ServiceProcess:
    settings: Path
    workdir: Path
    logs: Path
    incarnations: list[Incarnation] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (time, kB)
    _proc: subprocess.Popen[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sampling: bool = True
    code: Path = ROOT  # the `watcher` package the service runs: another checkout to soak its code
    _copiers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        number = len(self.incarnations) + 1
        err = self.logs / f"service-{number}.err"
        out = self.logs / f"service-{number}.out"
        env = {**os.environ, "PYTHONPATH": str(self.code)}
        env.pop("JOURNAL_STREAM", None)
        env.pop("NOTIFY_SOCKET", None)
        with out.open("wb") as o:
            # the log reaches its file through a pipe: a file-size limit on the service (the soak's full
            # disk) must not stop it logging
            proc = subprocess.Popen(
                [sys.executable, "-m", "watcher", "--config", str(self.settings), "--log-format", "json", "run"],
                stdout=o,
                stderr=subprocess.PIPE,
                env=env,
                cwd=self.workdir,
            )
        err.touch()
        copier = threading.Thread(target=_copy, args=(proc, err), daemon=True)
        copier.start()
        self._copiers.append(copier)
        with self._lock:
            self._proc = proc
            self.incarnations.append(Incarnation(number, proc.pid, time.time(), err, out))

    def stop(self, how: str) -> None:
        """Stop by `kill` (SIGKILL) or `term` (SIGTERM, SIGKILL if it has not stopped in time)."""
        with self._lock:
            proc, inc = self._proc, self.incarnations[-1]
        assert proc is not None
        inc.stopped_by = how
        inc.signal_at = time.time()
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
        try:
            inc.exit_code = proc.wait(timeout=STOP_TIMEOUT + 15)
        except subprocess.TimeoutExpired:
            inc.stop_hung = True
            proc.kill()
            inc.exit_code = proc.wait()
        inc.ended_at = time.time()

    def keep_alive(self) -> None:
        """A service that exited by itself is a crash: note it and start another (systemd would)."""
        with self._lock:
            proc, inc = self._proc, self.incarnations[-1]
        if proc is not None and proc.poll() is not None and inc.ended_at is None:
            inc.exit_code, inc.ended_at, inc.stopped_by = proc.returncode, time.time(), "itself"
            self.start()

    def sample_rss(self) -> None:
        """Until `close`: the running process's RSS once a second (run it in a thread)."""
        while self._sampling:
            with self._lock:
                pid = self._proc.pid if self._proc is not None and self._proc.poll() is None else None
            if pid is not None:
                with contextlib.suppress(OSError, ValueError):
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.rss.append((time.time(), int(line.split()[1])))
            time.sleep(1.0)

    def serving(self) -> bool:
        """The current service has loaded its configuration and finished a cycle."""
        return '"event": "cycle.done"' in self.incarnations[-1].err.read_text(errors="replace")

    def wait_first_cycle(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.keep_alive()
            if self.serving():
                return
            time.sleep(0.2)
        raise SystemExit(
            f"soak: the service did not finish its first cycle in {timeout:.0f}s; see {self.incarnations[-1].err}"
        )

    def close(self) -> None:
        """The process killed if it still runs (a soak that stops early stops its service), sampling ended."""
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._sampling = False
        for copier in self._copiers:
            copier.join(timeout=10)

    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def hup(self) -> bool:
        """SIGHUP to the running service (a reload); False when none runs."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGHUP)
        return True


def _copy(proc: subprocess.Popen[bytes], err: Path) -> None:
    assert proc.stderr is not None
    with err.open("ab", buffering=0) as log:
        for line in proc.stderr:
            log.write(line)
    proc.stderr.close()
