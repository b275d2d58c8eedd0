"""The container's entrypoint, run as the image runs it but outside a container (none runs here).

`trialwatch` on PATH is a shim for this checkout's `python -m watcher`; the secrets directory, which
is /run/secrets in the image, is a temporary one. The Dockerfile itself is linted (hadolint) and
compose.yaml validated against the Compose Specification's schema by .ci/run.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.workspace import REPO

ENTRYPOINT = REPO / "container" / "entrypoint.sh"
SECRET = "json://127.0.0.1:9/hook?token=s3cret-token"


@pytest.fixture
def image(tmp_path: Path) -> dict[str, str]:
    """The environment the image gives the entrypoint: PATH with `trialwatch`, a config and secrets dir."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "trialwatch"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m watcher "$@"\n', encoding="utf-8")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "hook-url").write_text(SECRET + "\n", encoding="utf-8")
    (tmp_path / "etc").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"TRIALWATCH_CONFIG", "CREDENTIALS_DIRECTORY"}}
    return {
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "TRIALWATCH_SECRETS_DIR": str(tmp_path / "secrets"),
        "TRIALWATCH_CONFIG": str(tmp_path / "etc" / "trialwatch.yaml"),
        "STATE_DIRECTORY": str(tmp_path / "state"),
    }


def settings(env: dict[str, str], channels: str) -> None:
    folder = Path(env["TRIALWATCH_CONFIG"]).parent
    (folder / "watchlist.yaml").write_text("trials: [NCT04728893]\n", encoding="utf-8")
    Path(env["TRIALWATCH_CONFIG"]).write_text(f"watchlist: watchlist.yaml\nchannels:\n{channels}", encoding="utf-8")


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_secret_files_reach_channel_urls_and_never_the_output(image: dict[str, str]) -> None:
    settings(image, "  hook:\n    url: ${credential:hook-url}\n  other:\n    url: ${TRIALWATCH_OTHER_URL}\n")
    other = Path(image["TRIALWATCH_SECRETS_DIR"]) / "other-url"
    other.write_text("json://127.0.0.1:9/other?token=other-token\n", encoding="utf-8")
    without = entrypoint(image, "check-config")
    assert without.returncode == 2
    assert "TRIALWATCH_OTHER_URL" in without.stderr  # the variable is named …
    result = entrypoint({**image, "TRIALWATCH_OTHER_URL_FILE": str(other)}, "check-config")
    assert result.returncode == 0, result.stderr
    assert "hook" in result.stdout and "other" in result.stdout
    assert "s3cret-token" not in result.stdout + result.stderr  # … the values never are
    assert "other-token" not in result.stdout + result.stderr


@pytest.mark.slow
def test_a_file_variable_that_cannot_be_read_or_doubles_a_variable_is_refused(image: dict[str, str]) -> None:
    settings(image, "  hook:\n    url: ${credential:hook-url}\n")
    missing = entrypoint({**image, "PGPASSWORD_FILE": "/nonexistent/db-password"}, "check-config")
    assert missing.returncode == 2
    assert "PGPASSWORD_FILE names /nonexistent/db-password, which is not a readable file" in missing.stderr
    both = entrypoint(
        {**image, "PGPASSWORD": "x", "PGPASSWORD_FILE": str(Path(image["TRIALWATCH_SECRETS_DIR"]) / "hook-url")},
        "check-config",
    )
    assert both.returncode == 2 and "both PGPASSWORD and PGPASSWORD_FILE are set" in both.stderr
    other_paths = entrypoint({**image, "SSL_CERT_FILE": "/nonexistent/ca.pem"}, "check-config")
    assert other_paths.returncode == 0, other_paths.stderr  # a path variable of other programs is left alone


@pytest.mark.slow
def test_the_service_needs_a_settings_file_and_other_commands_pass_through(image: dict[str, str]) -> None:
    refused = entrypoint(image, "run")
    assert refused.returncode == 2
    assert f"no settings file at {image['TRIALWATCH_CONFIG']}" in refused.stderr
    assert "trialwatch init" in refused.stderr
    version = entrypoint(image, "--version")
    assert version.returncode == 0 and version.stdout.startswith("trialwatch, version ")
    made = entrypoint(image, "init", str(Path(image["TRIALWATCH_CONFIG"]).parent))
    assert made.returncode == 0, made.stderr
    assert entrypoint(image, "check-config").returncode == 0


@pytest.mark.slow
def test_the_health_check_fails_until_the_service_runs(image: dict[str, str]) -> None:
    """The image's HEALTHCHECK command, as Docker runs it: unhealthy before the database exists (a reading
    command never creates it) and for a service that never started."""
    settings(image, "  hook:\n    url: ${credential:hook-url}\n")
    no_database = entrypoint(image, "status", "--check")
    assert no_database.returncode == 1, no_database.stderr
    assert "no database at" in no_database.stderr
    assert entrypoint(image, "db", "upgrade").returncode == 0
    result = entrypoint(image, "status", "--check")
    assert result.returncode == 1, result.stderr
    assert "never started" in result.stdout


def test_the_dockerfile_and_compose_file_say_what_the_docs_say() -> None:
    """The health check goes through the entrypoint (the secrets), the user is not root, state is a volume."""
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert 'CMD ["trialwatch-entrypoint", "status", "--check"]' in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert 'VOLUME ["/var/lib/trialwatch"]' in dockerfile
    assert dockerfile.count("\nFROM ") == 2  # multi-stage: the run stage has no build tools
    compose = (REPO / "compose.yaml").read_text(encoding="utf-8")
    assert "image: postgres:16" in compose
    assert 'command: ["serve", "--host", "0.0.0.0", "--port", "8080"]' in compose
