"""The systemd unit: it verifies, it carries its hardening, and systemd-analyze rates it well."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.workspace import REPO

UNIT = REPO / "systemd" / "trialwatch.service"
INSTALLED_EXE = "/opt/trialwatch/bin/trialwatch"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (.ci/run installs it with apt-get: package systemd)",
)


def settings() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_the_unit_is_a_notify_service_with_reload_state_and_credentials() -> None:
    unit = settings()
    assert unit["Type"] == ["notify"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["ExecStart"][0].startswith(INSTALLED_EXE) and unit["ExecStart"][0].endswith(" run")
    assert unit["DynamicUser"] == ["yes"]
    assert unit["StateDirectory"] == ["trialwatch"]
    assert "WatchdogSec" in unit
    assert "#LoadCredential=slack-url:/etc/trialwatch/credentials/slack-url" in UNIT.read_text()


def test_the_unit_carries_the_hardening_set() -> None:
    unit = settings()
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }.items():
        assert unit.get(key) == [value], key
    assert "@system-service" in unit["SystemCallFilter"]


def test_the_unit_bounds_the_services_memory() -> None:
    """A hostile reply or record cannot take the machine's memory: throttled at MemoryHigh, killed
    (and restarted) at MemoryMax, with no swap to hide in."""
    unit = settings()
    sizes = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

    def size(key: str) -> int:
        (value,) = unit[key]
        return int(value[:-1]) * sizes[value[-1]]

    assert 256 << 20 <= size("MemoryHigh") < size("MemoryMax") <= 4 << 30
    assert unit["MemorySwapMax"] == ["0"]
    assert unit["Restart"] == ["on-failure"]


def test_the_stop_timeout_leaves_room_for_the_services_own_bound() -> None:
    seconds = {"s": 1, "min": 60}
    match = re.fullmatch(r"(\d+)(s|min)", settings()["TimeoutStopSec"][0])
    assert match and int(match.group(1)) * seconds[match.group(2)] > 30, "schedule.stop_timeout defaults to 30s"


def _testable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this interpreter: verify checks the binary exists."""
    copy = tmp_path / "trialwatch.service"
    copy.write_text(UNIT.read_text().replace(INSTALLED_EXE, f"{sys.executable} -m watcher"))
    return copy


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(_testable_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "trialwatch.service" not in result.stderr, result.stderr


@needs_systemd_analyze
def test_systemd_analyze_security_rates_the_unit_ok(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(_testable_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for trialwatch.service: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0
