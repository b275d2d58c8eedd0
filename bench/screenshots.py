"""Screenshots of the web view for the docs: `python -m bench.screenshots [OUT_DIR]`.

Seeds a temporary SQLite database with the real successive versions of the test corpus
(../shared/fixtures/ctgov/pairs, read through tests.support), starts `trialwatch serve` on it as a
real process, and has Debian's chromium (through Playwright) photograph the watch list, a trial
page and a comparison: docs/images/watch-list.png, trial-page.png, compare.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.support.web_store import free_port, seed, settings_file
from watcher.store import Store

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TRIAL = "NCT06780137"  # three versions, reworded texts: word diffs to show
TAGS = {"NCT04514484": ["oncology", "hiv"], TRIAL: ["oncology"], "NCT07011550": ["cardio"]}


def serve(settings: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "watcher", "--config", str(settings), "serve", "--port", str(port)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/static/style.css", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("trialwatch serve did not start")


def shoot(base: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
        page.goto(f"{base}/?sort=changed")
        page.screenshot(path=str(out / "watch-list.png"))
        page.set_viewport_size({"width": 1280, "height": 1400})
        page.goto(f"{base}/trials/{TRIAL}")
        page.screenshot(path=str(out / "trial-page.png"))
        page.set_viewport_size({"width": 1280, "height": 860})
        page.goto(f"{base}/trials/NCT04514484/compare?a=1&b=6&view=side")
        page.screenshot(path=str(out / "compare.png"))
        browser.close()


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = f"sqlite:///{root / 'trialwatch.sqlite'}"
        with Store(url) as store:
            trials = seed(store, now=datetime.now(UTC), hostile=False)
        settings = settings_file(root, url, trials, tags=TAGS)
        port = free_port()
        process = serve(settings, port)
        try:
            shoot(f"http://127.0.0.1:{port}", out)
        finally:
            process.terminate()
            process.wait(timeout=20)
    print(f"screenshots written to {out}: watch-list.png, trial-page.png, compare.png")


if __name__ == "__main__":
    main()
