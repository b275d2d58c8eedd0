"""One poll of the whole registry (`registry: {all: true}`): every study, not a list of IDs.

The first sync and the weekly full re-fetch page through all of ClinicalTrials.gov, 1,000 full
records a request (~561 requests for 560,000 studies); in between, one query asks for the full
records of the studies updated since the last complete poll's data date minus a day
(`filter.advanced=AREA[LastUpdatePostDate]RANGE[<day>,MAX]`), ⌈U / 1,000⌉ requests for U updated
studies: the registry's daily churn, a few thousand. Records go to `sink` one at a time as they are
read; the version gate (`/version`) and `PollState`/`PollResult` are the same as for a watchlist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog

from watcher.errors import ApiError
from watcher.registry.client import CtGovClient
from watcher.registry.poll import PollResult, PollState, Progress, Sink, since_day
from watcher.registry.responses import Fetched
from watcher.registry.stream import walk_registry
from watcher.times import utc

log = structlog.get_logger("watcher.registry.whole")


def poll_whole_registry(
    client: CtGovClient,
    nct_ids: Sequence[str],
    state: PollState,
    *,
    now: datetime,
    progress: Progress | None = None,
    sink: Sink | None = None,
) -> PollResult:
    """`poll` for every study of the registry; `nct_ids` (the watchlist) are among them and need no
    request of their own. Without `sink` the records are returned (small registries: tests)."""
    del nct_ids  # every study is read anyway
    start = client.requests_made
    records: dict[str, dict[str, object]] = {}
    full = (
        state.force_full
        or state.last_full_refetch is None
        or utc(now) - utc(state.last_full_refetch) >= client.settings.full_refetch_every
    )
    since = since_day(state)

    def result(
        strategy: str, data_timestamp: str | None, *, error: ApiError | None = None, read: int = 0
    ) -> PollResult:
        out = PollResult(
            data_timestamp=data_timestamp,
            skipped=strategy == "skip",
            records=records,
            moved={},
            not_found=set(),
            failures={},
            requests=client.requests_made - start,
            strategy=strategy,
            full_refetch=full and error is None and strategy != "skip",
            api_error=error,
        )
        log.info(
            "poll.done",
            strategy=strategy,
            studies=read,
            requests=out.requests,
            full_refetch=out.full_refetch,
            data_timestamp=data_timestamp,
            error=str(error) if error else None,
        )
        return out

    try:
        version = client.version()
    except ApiError as exc:
        log.error("poll.api_unavailable", error=str(exc), error_type=type(exc).__name__)  # noqa: TRY400
        return result("unavailable", state.data_timestamp, error=exc)
    if not full and version.data_timestamp == state.data_timestamp:
        return result("skip", version.data_timestamp)
    advanced: str | None = None
    if full or since is None:
        strategy, full = "registry", True
    else:
        strategy, advanced = "registry-since", f"AREA[LastUpdatePostDate]RANGE[{since.isoformat()},MAX]"
    read = 0

    def take(fetched: Fetched) -> None:
        nonlocal read
        read += 1
        if sink is not None:
            sink(fetched.nct_id, fetched.record)
        else:
            records[fetched.nct_id] = fetched.record
        if progress is not None:
            progress(read, read)

    log.info("poll.plan", strategy=strategy, query=advanced)
    try:
        walk_registry(client, take, advanced=advanced)
    except ApiError as exc:  # what was read is kept; the gate stays, so the next cycle reads it again
        log.error("poll.registry_failed", error=str(exc), error_type=type(exc).__name__, read=read)  # noqa: TRY400
        return result(strategy, state.data_timestamp, error=exc, read=read)
    return result(strategy, version.data_timestamp, read=read)
