"""What the tests of the registry's client and transport share: a sleep that is recorded instead of
waited, settings quick enough for the fake API on 127.0.0.1, and counts of what it served and what was logged."""

from __future__ import annotations

from typing import Any

from tests.support.fakeapi import FakeCtGov
from watcher.config import ApiSettings


class Sleeps(list[float]):
    """Stands in for time.sleep: records the waits instead of waiting them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def quick_settings(fake: FakeCtGov) -> ApiSettings:
    """No rate limit, short backoffs, three retries: faults are met in milliseconds.

    The timeout (1.5 s) is below the fake's "timeout" fault (2 s late) yet far above a page's time even on a
    loaded 2-core CI, where 0.5 s once timed a healthy page out and a test counting requests saw one more.
    """
    return ApiSettings(
        base_url=fake.base_url,
        timeout=1.5,
        requests_per_second=0,
        max_retries=3,
        backoff_base=0.01,
        backoff_max=0.05,
    )


def hits(fake: FakeCtGov, path: str) -> int:
    """Requests the fake served for `path` (under /api/v2)."""
    return len([r for r in fake.requests if r[1] == f"/api/v2{path}"])


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The captured log events called `name`."""
    return [e for e in logs if e["event"] == name]
