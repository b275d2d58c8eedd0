"""A store seeded with real successive versions (../shared/fixtures/ctgov/pairs), for the web view's
tests, its screenshots and its benchmark: every pair's trial stored version after version, with the
changes the poller would have found, dated so the pages have recent changes to show.

`hostile` also stores a copy of one record under another NCT ID with a title that is a script, so
every page can be checked to show it as text.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.shared import pairs_dir
from tests.support.workspace import REPO
from watcher.config import Config, load_config
from watcher.detect import SeverityRules, changes_between
from watcher.detect.record import content_hash
from watcher.store import Store
from watcher.store.values import NewVersion

HOSTILE_ID = "NCT09999999"
HOSTILE_TITLE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def trial_versions() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each trial of the corpus with its distinct versions, oldest first."""
    root = pairs_dir()
    truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
    for nct_id, study in sorted(truth["studies"].items()):
        names: list[str] = []
        for entry in study["pairs"]:
            for name in (entry["from"], entry["to"]):
                if name not in names:
                    names.append(name)
        records = [json.loads((root / nct_id / n).read_text(encoding="utf-8")) for n in sorted(names)]
        yield nct_id, records


def renamed(record: Mapping[str, Any], nct_id: str, title: str | None = None) -> dict[str, Any]:
    copied = copy.deepcopy(dict(record))
    ident = copied["protocolSection"]["identificationModule"]
    ident["nctId"] = nct_id
    if title is not None:
        ident["briefTitle"] = title
        ident["officialTitle"] = title
    return copied


def store_versions(
    store: Store,
    nct_id: str,
    records: list[dict[str, Any]],
    *,
    start: datetime,
    step: timedelta,
    after: dict[str, Any] | None = None,
) -> int:
    """Store `records` as successive versions of `nct_id` (after the stored record `after`, if any);
    returns how many were new."""
    rules = SeverityRules.from_mapping({})
    items = []
    previous = after
    for index, record in enumerate(records):
        digest = content_hash(record)
        if previous is not None and content_hash(previous) == digest:
            continue
        at = start + index * step
        changes = changes_between(previous, record, rules) if previous is not None else []
        items.append(
            NewVersion(
                nct_id=nct_id,
                record=record,
                digest=digest,
                fetched_at=at,
                changes=tuple(changes),
                baseline=previous is None,
                detected_at=at,
            )
        )
        previous = record
    for item in items:  # one at a time: each version numbered after the one before
        store.versions.save_many([item])
    return len(items)


def seed(store: Store, *, now: datetime, hostile: bool = True) -> list[str]:
    """Every corpus trial, its last version within the last days; returns the NCT IDs stored."""
    stored = []
    for nct_id, records in trial_versions():
        start = now - timedelta(days=2 * len(records))
        store_versions(store, nct_id, records, start=start, step=timedelta(days=2))
        stored.append(nct_id)
    if hostile:
        nct_id, records = max(trial_versions(), key=lambda item: (len(item[1]), item[0]))
        copies = [renamed(r, HOSTILE_ID, HOSTILE_TITLE) for r in records]
        store_versions(store, HOSTILE_ID, copies, start=now - timedelta(days=5), step=timedelta(days=1))
        stored.append(HOSTILE_ID)
    return stored


def settings_file(root: Path, db_url: str, trials: list[str], *, tags: Mapping[str, list[str]]) -> Path:
    """A settings file and watchlist naming `trials` (with `tags`), on the database `db_url`."""
    lines = ["trials:"]
    for nct_id in trials:
        lines.append(f"  - id: {nct_id}")
        if tags.get(nct_id):
            lines.append(f"    tags: [{', '.join(tags[nct_id])}]")
    (root / "watchlist.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = root / "trialwatch.yaml"
    settings.write_text(
        f"storage:\n  url: {json.dumps(db_url)}\nwatchlist: watchlist.yaml\n"
        "channels:\n  team: {url: 'json://hooks.example.org/secret-token-123'}\n",
        encoding="utf-8",
    )
    return settings


@dataclass(frozen=True)
class SeededSite:
    """A settings file on a database seeded with the corpus (see `seed`)."""

    root: Path
    settings: Path
    db_url: str
    trials: list[str]
    now: datetime

    def config(self) -> Config:
        return load_config(self.settings)

    @property
    def busiest(self) -> str:
        """The trial with the most stored versions."""
        with Store(self.db_url) as store:
            return max(self.trials, key=lambda n: (len(store.versions.infos(n)), n))


TAGS = ("oncology", "cardio")


@pytest.fixture(scope="module")
def seeded_site(tmp_path_factory: pytest.TempPathFactory) -> SeededSite:
    """The corpus in a SQLite database, the watchlist tagging some trials; the hostile copy included."""
    root = tmp_path_factory.mktemp("web")
    db_url = f"sqlite:///{root / 'state' / 'trialwatch.sqlite'}"
    now = datetime.now(UTC)
    with Store(db_url) as store:
        trials = seed(store, now=now)
    tags = {n: [TAGS[i % 2]] for i, n in enumerate(trials[:10])}
    tags[HOSTILE_ID] = [TAGS[0]]
    settings = settings_file(root, db_url, trials, tags=tags)
    return SeededSite(root, settings, db_url, trials, now)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def web_server(seeded_site: SeededSite) -> Iterator[str]:
    """`trialwatch serve` as a real process (uvicorn) on a free port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "watcher", "--config", str(seeded_site.settings), "serve", "--port", str(port)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"trialwatch serve exited with {process.returncode}: {err}")
        try:
            if httpx.get(f"{url}/static/style.css", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"trialwatch serve did not answer at {url} within 60 s")
