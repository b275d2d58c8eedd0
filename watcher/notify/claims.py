"""Who holds a claim on an outbox message, and whether that process is still alive.

A process killed mid-send leaves its message `sending` under a lease (`notify.claim_timeout`,
5 min by default). Waiting out the lease would hold the channel's queue back for minutes after
a restart, so each claim names its process — host, boot, pid and the pid's start time — and a
process on the same host takes a dead process's claim over at once. A process that is alive, or
that we cannot see (another host; a pid hidden by `ProtectProc=invisible` answers the signal-0
probe with EPERM), keeps its claim until the lease runs out: a live sender is never raced.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _start_ticks(pid: int) -> str | None:
    """The pid's start time since boot (field 22 of /proc/PID/stat): a reused pid has another."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


@cache
def me() -> str:
    """This process, as its claims name it: host/boot/pid/start."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{_boot_id()}/{pid}/{_start_ticks(pid) or '-'}"


def is_dead(claimer: str) -> bool:
    """True only when the claiming process is certainly gone (same host); False when unsure."""
    try:
        host, boot, pid_text, start = claimer.rsplit("/", 3)
        pid = int(pid_text)
    except ValueError:
        return False
    mine_host, mine_boot, _, _ = me().rsplit("/", 3)
    if host != mine_host:
        return False
    if boot != mine_boot:
        return boot != "-" and mine_boot != "-"  # the host rebooted since the claim
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, under another user
    current = _start_ticks(pid)
    return current is not None and start not in ("-", current)  # the pid now names another process
