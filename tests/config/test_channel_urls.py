"""A JSON webhook's URL is checked by the reader that sends with it; every other channel's by apprise.

JSON channels are posted by TrialWatch's own code (`watcher.notify.hook`), so reading the settings checks
their URL with the same function (`watcher.config.hookurl.hook_target`): what is checked is what is sent
with, and a `check` whose channels are all webhooks never imports apprise and its plugins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.config import load_settings
from watcher.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _settings(folder: Path, url: str) -> Path:
    path = folder / "trialwatch.yaml"
    path.write_text(f"storage:\n  url: sqlite:///x.sqlite\nchannels:\n  hook:\n    url: {url}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("json://host:notaport/x", "the webhook URL cannot be read (check its host and port)"),
        ("json:///no-host", "a webhook URL is json://host/path or jsons://host/path"),
        ("jsons://host/x?method=FETCH", "method='FETCH' is not one of POST, PUT, PATCH, GET, DELETE, HEAD"),
    ],
)
def test_a_bad_webhook_url_is_named_with_its_file_and_line(tmp_path: Path, url: str, said: str) -> None:
    path = _settings(tmp_path, url)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert f"{path}:5: channels.hook.url: {said}" in str(raised.value)


def test_a_good_webhook_url_reads_as_it_is_sent(tmp_path: Path) -> None:
    settings = load_settings(_settings(tmp_path, "jsons://user:pw@hooks.example.org:8443/in?+X-Api-Key=k&method=PUT"))
    assert settings.channels["hook"].url.startswith("jsons://")


PROBE = """
import json, sys
from pathlib import Path
from watcher.config import load_settings
load_settings(Path(sys.argv[1]))
print(json.dumps("apprise" in sys.modules))
"""


@pytest.mark.slow  # a fresh interpreter: only there is what reading the settings imports visible
@pytest.mark.parametrize(("url", "imports_apprise"), [("json://127.0.0.1:9/hook", False), ("slack://T1/B2/C3", True)])
def test_only_a_channel_apprise_sends_is_looked_up_in_apprise(tmp_path: Path, url: str, imports_apprise: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(_settings(tmp_path, url))],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) is imports_apprise
