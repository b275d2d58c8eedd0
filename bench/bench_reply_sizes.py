"""The registry reply caps beside real replies, and what hostile replies cost with the caps in place.

Prints the largest real list page and study record in the shared fixtures (what `MAX_BODY_BYTES` and
`MAX_PAGE_BYTES` in `watcher/registry/transport.py` are set against, as ratios), then serves a gzip that
inflates to 1 GiB and a reply dripping a byte every two seconds from a local hostile server and prints
the peak Python memory and the time until each is refused.

    python -m bench.bench_reply_sizes
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

from tests.support import shared
from tests.support.hostile import HostileRegistry
from watcher.config import ApiSettings
from watcher.errors import ApiError
from watcher.registry.client import CtGovClient
from watcher.registry.transport import MAX_BODY_BYTES, MAX_PAGE_BYTES


def largest(folder: str) -> tuple[int, str, int]:
    """(bytes, name, studies) of the largest JSON file in `folder` of the fixtures."""
    root = next(p / folder for p in shared.search_path() if (p / folder).is_dir())
    sizes = []
    for path in Path(root).glob("*.json"):
        data = json.loads(path.read_bytes())
        studies = data.get("studies", [data]) if isinstance(data, dict) else data
        sizes.append((path.stat().st_size, path.name, len(studies)))
    return max(sizes)


def hostile(mode: str, **kwargs: float) -> tuple[str, float, int]:
    server = HostileRegistry(mode, **kwargs).prepare()  # type: ignore[arg-type]
    settings = ApiSettings(base_url=server.base_url, requests_per_second=0, max_retries=0, timeout=3)
    try:
        with CtGovClient(settings) as client:
            tracemalloc.start()
            started = time.monotonic()
            try:
                client.version()
                outcome = "accepted (wrong)"
            except ApiError as exc:
                outcome = type(exc).__name__
            took = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    finally:
        server.close()
    return outcome, took, peak


def main() -> None:
    print(f"{'real reply':<16} {'file':<62} {'bytes':>10} {'studies':>8}")
    biggest_page = 0
    for folder in ("lists", "downloads", "studies"):
        size, name, count = largest(folder)
        biggest_page = max(biggest_page, size) if folder != "studies" else biggest_page
        print(f"{folder:<16} {name:<62} {size:>10,} {count:>8}")
    print(f"\nMAX_BODY_BYTES {MAX_BODY_BYTES:>13,}  = {MAX_BODY_BYTES / biggest_page:,.0f}x the largest real page")
    print(f"MAX_PAGE_BYTES {MAX_PAGE_BYTES:>13,}  (spooled to disk; a full page of 1,000 records is about 50 MB)\n")
    print(f"{'hostile reply':<36} {'outcome':<18} {'seconds':>8} {'peak MiB':>9}")
    for label, mode, kwargs in (
        ("1 GiB body", "huge", {"size": 1 << 30}),
        ("gzip inflating to 1 GiB", "gzip", {"size": 1 << 30}),
        ("1 byte / 2 s, api.timeout 3 s", "drip", {"interval": 2.0}),
    ):
        outcome, took, peak = hostile(mode, **kwargs)
        print(f"{label:<36} {outcome:<18} {took:>8.2f} {peak / 2**20:>9.1f}")


if __name__ == "__main__":
    main()
