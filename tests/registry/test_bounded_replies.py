"""Registry replies are bounded, against a hostile local HTTP server: a body past the byte cap (counted
once decoded, so a gzip bomb is cut off as it inflates) is refused in bounded memory, and a server
dripping a byte every two seconds fails at `api.timeout`, not never."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator

import pytest

from tests.support.hostile import HostileRegistry
from watcher.config import ApiSettings
from watcher.errors import ApiError, InvalidResponse, TransientApiError
from watcher.registry import transport
from watcher.registry.client import CtGovClient
from watcher.registry.pages import SPOOL_MEMORY
from watcher.registry.transport import MAX_BODY_BYTES

IDS = ["NCT04728893", "NCT03418623"]


@pytest.fixture
def registry() -> Iterator[HostileRegistry]:
    server = HostileRegistry()
    try:
        yield server
    finally:
        server.close()


def settings(server: HostileRegistry, timeout: float = 30) -> ApiSettings:
    return ApiSettings(base_url=server.base_url, requests_per_second=0, max_retries=0, timeout=timeout)


def peak_while(action: object) -> tuple[BaseException, int]:
    tracemalloc.start()
    try:
        with pytest.raises(ApiError) as refused:
            action()  # type: ignore[operator]
        return refused.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("mode", ["huge", "gzip"])
def test_a_reply_past_the_cap_is_refused_in_bounded_memory(registry: HostileRegistry, mode: str) -> None:
    registry.mode, registry.size = mode, 1 << 30  # 1 GiB (as a gzip: about 1 MiB)
    registry.prepare()
    with CtGovClient(settings(registry)) as client:
        error, peak = peak_while(client.version)
    assert isinstance(error, InvalidResponse) and f"over {MAX_BODY_BYTES:,} bytes" in str(error)
    # the cap and one inflate step (1 MiB) and their copies: not the gigabyte, nor a 64 MiB read at once
    assert peak < 2 * MAX_BODY_BYTES, f"peak {peak >> 20} MiB"


def test_a_page_past_its_cap_is_refused_as_it_inflates(
    registry: HostileRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page read a study at a time is spooled to disk; its cap (1 GiB) is lowered to 16 MiB so the
    test stays small: a gzip page inflating to 1 GiB stops at the cap. A batch of IDs fails whole."""
    monkeypatch.setattr(transport, "MAX_PAGE_BYTES", 16 << 20)
    registry.mode, registry.size = "gzip", 1 << 30
    registry.prepare()
    with CtGovClient(settings(registry)) as client:
        error, peak = peak_while(lambda: client.walk({"pageSize": "1000"}, lambda study: None))
        result = client.fetch_studies(IDS)
    assert isinstance(error, InvalidResponse) and "over 16,777,216 bytes (decoded)" in str(error)
    # spooled: the spool's in-memory part and an inflate step, not the cap
    assert peak < SPOOL_MEMORY + (4 << 20), f"peak {peak >> 20} MiB"
    assert set(result.errors) == set(IDS) and not result.records
    assert all("bytes (decoded); refused" in str(e) for e in result.errors.values())


def test_a_gzip_reply_under_the_cap_still_decodes_whole(registry: HostileRegistry) -> None:
    """Inflating a step at a time gives the whole body (3 MiB: several steps)."""
    registry.mode, registry.size = "gzip", 3 << 20
    registry.prepare()
    with CtGovClient(settings(registry)) as client:
        _, body = client.transport.get("/version")
    assert body == bytes(3 << 20)


@pytest.mark.parametrize("endpoint", ["version", "page"])
def test_a_server_dripping_a_byte_every_two_seconds_fails_at_the_timeout(
    registry: HostileRegistry, endpoint: str
) -> None:
    registry.mode, registry.interval = "drip", 2.0
    with CtGovClient(settings(registry, timeout=3)) as client:
        started = time.monotonic()
        if endpoint == "version":
            with pytest.raises(TransientApiError) as slow:
                client.version()
            error: BaseException = slow.value
        else:
            error = client.fetch_studies(IDS).errors[IDS[0]]
        took = time.monotonic() - started
    assert isinstance(error, TransientApiError) and "longer than api.timeout (3 s)" in str(error)
    assert 3 <= took < 3 + 2 + 5, f"took {took:.1f} s"  # the timeout, at most one more drip, slack for load
