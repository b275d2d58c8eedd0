"""The ClinicalTrials.gov API v2 client: the endpoints the poll, the searches and the backfill use.

`CtGovClient` asks; `watcher.registry.transport` under it speaks HTTP (rate limit, retries, redirects,
error translation). Here every answer is checked before it leaves: a record that is not JSON, is cut
short, is an HTML page, lacks `protocolSection` or names another study becomes `InvalidResponse` for
that trial only; pages are followed as far as studies can exist (`pages.Pager`), in batches run
`max_concurrency` at a time.

httpx types never reach this module's callers; they see `ApiVersion`, `Fetched`, `BatchResult` and the
`watcher.errors` tree.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import structlog

from watcher.config import ApiSettings
from watcher.errors import ApiError, InvalidResponse
from watcher.ids import is_nct_id, normalize_nct_id
from watcher.registry import pages
from watcher.registry.ahead import Ahead, peek_envelope
from watcher.registry.pages import Pager, PageReader
from watcher.registry.responses import BatchResult, Fetched, aliases_of, attribute, parse_json, validate_study
from watcher.registry.transport import Transport

log = structlog.get_logger("watcher.registry.client")

PROBE_FIELDS = ("NCTId", "NCTIdAlias", "LastUpdatePostDate", "OverallStatus")
"""What the cheap probe asks per study: identity, the last posting, and the status, which the registry
also changes without a new posting (e.g. to UNKNOWN when a record is not verified for two years)."""
MAX_PAGES, MAX_PAGE_SIZE = pages.MAX_PAGES, pages.MAX_PAGE_SIZE  # callers import them from here


@dataclass(frozen=True, slots=True)
class ApiVersion:
    api_version: str
    data_timestamp: str  # UTC, yyyy-MM-ddTHH:mm:ss: changes once per data refresh


class CtGovClient:
    """ClinicalTrials.gov API v2 over one (injected or created) `httpx.Client`.

    `transport` is the HTTP under the endpoints, for the requests they do not make: the record
    history's pages, `trialwatch doctor`'s raw exchanges.
    """

    def __init__(
        self,
        api: ApiSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = api
        self.transport = Transport(api, http=http, sleep=sleep)

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far, retries and redirect hops included."""
        return self.transport.requests_made

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> CtGovClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # endpoints ---------------------------------------------------------------------------------

    def version(self) -> ApiVersion:
        """The data version: it moves once per daily refresh, so an unmoved one means nothing changed."""
        _, text = self.transport.get("/version")
        body = parse_json(text, "/version")
        if not isinstance(body, dict):
            raise InvalidResponse("/version: not a JSON object")
        api_version, stamp = body.get("apiVersion"), body.get("dataTimestamp")
        if not isinstance(api_version, str) or not isinstance(stamp, str):
            raise InvalidResponse("/version: apiVersion or dataTimestamp missing")
        return ApiVersion(api_version, stamp)

    def fetch_study(self, nct_id: str) -> Fetched:
        """One full record. An alias answers 301: followed, and reported through `Fetched.nct_id`."""
        if not is_nct_id(nct_id, short_ok=True):
            raise ApiError(f"{nct_id!r} is not an NCT ID")
        url, body = self.transport.get(f"/studies/{nct_id}", nct_id=nct_id)
        final_id = normalize_nct_id(urlsplit(url).path.rsplit("/", 1)[-1])
        try:
            fetched = validate_study(parse_json(body, f"/studies/{nct_id}"), nct_id, expected=final_id)
        except InvalidResponse as exc:
            log.warning("api.invalid_response", nct_id=nct_id, reason=str(exc))
            raise
        if fetched.moved:
            log.info("api.moved", nct_id=nct_id, canonical_id=fetched.nct_id)
        return fetched

    def fetch_studies(
        self,
        ids: Sequence[str],
        *,
        fields: Sequence[str] | None = None,
        on_batch: Callable[[BatchResult], None] | None = None,
    ) -> BatchResult:
        """Records for many IDs through `/studies?filter.ids=…`, batched and paged.

        IDs absent from every page are `missing` (removed, or unknown): confirm them with
        `fetch_study`. A batch that fails fails each of its IDs; one bad record fails only its ID.
        `on_batch(partial)` gets each batch's result as it comes in, for progress or streaming: what
        it removes from `partial` is left out of the returned result.
        """
        result = BatchResult()
        wanted: list[str] = []
        invalid = BatchResult()
        for nct_id in dict.fromkeys(ids):
            if is_nct_id(nct_id, short_ok=True):
                wanted.append(nct_id)
            else:
                invalid.errors[nct_id] = ApiError(f"{nct_id!r} is not an NCT ID")
        if invalid.errors:
            if on_batch is not None:
                on_batch(invalid)
            result.errors.update(invalid.errors)
        # each page is parsed whole here: the poll's full records go through `stream.stream_studies` instead
        size = self.settings.batch_size
        if not fields:
            size = min(size, self.settings.full_page_size)
        batches = [wanted[i : i + size] for i in range(0, len(wanted), size)]

        def one(batch: list[str]) -> BatchResult:
            # never `len(batch)`: the live /studies endpoint does not look ahead, so an exactly full page
            # carries a token to an empty page (cyanheads/clinicaltrialsgov-mcp-server issue #98)
            return self._batch(batch, fields, page_size=MAX_PAGE_SIZE)

        for partial in self._map(one, batches):
            if on_batch is not None:
                on_batch(partial)  # it may take the records out, to stream them
            result.records.update(partial.records)
            result.errors.update(partial.errors)
            result.missing.update(partial.missing)
        return result

    def updated_since(self, day: date, *, max_pages: int) -> dict[str, str] | None:
        """Every study updated on or after `day`: NCT ID → lastUpdatePostDate (aliases are keys too, so
        intersecting with a watchlist finds trials listed under a new ID); or None after one request
        when the answer would take over `max_pages` pages: the caller is better off asking about its
        own IDs then."""
        params = {
            "filter.advanced": f"AREA[LastUpdatePostDate]RANGE[{day.isoformat()},MAX]",
            "fields": ",".join(PROBE_FIELDS),
            "pageSize": str(MAX_PAGE_SIZE),
            "countTotal": "true",
        }
        updates: dict[str, str] = {}
        for number, page in enumerate(self._pages(params)):
            if number == 0:
                total = page.get("totalCount")
                if isinstance(total, int) and -(-total // MAX_PAGE_SIZE) > max_pages:
                    log.info("api.updated_since.too_many", since=day.isoformat(), total=total, max_pages=max_pages)
                    return None
            for study in page["studies"]:
                try:
                    fetched = validate_study(study, None)
                except InvalidResponse as exc:
                    log.warning("api.invalid_study", reason=str(exc), endpoint="/studies")
                    continue
                if fetched.last_update:
                    updates[fetched.nct_id] = fetched.last_update
                    for alias in aliases_of(study):
                        updates.setdefault(alias, fetched.last_update)
        return updates

    def search_pages(self, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every page of a `/studies` query of our own (a saved search: watcher/registry/search.py)."""
        return self._pages(params)

    # batches and pages -------------------------------------------------------------------------

    def _map(self, fn: Callable[[list[str]], BatchResult], batches: list[list[str]]) -> Iterator[BatchResult]:
        """`fn` over the batches, `max_concurrency` at a time, yielding results as they finish."""
        workers = min(len(batches), max(1, self.settings.max_concurrency))
        if workers <= 1:
            yield from map(fn, batches)
            return
        todo = iter(batches)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctgov") as pool:
            pending = {pool.submit(fn, batch) for batch in itertools.islice(todo, workers)}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    batch = next(todo, None)
                    if batch is not None:
                        pending.add(pool.submit(fn, batch))

    def _batch(self, batch: list[str], fields: Sequence[str] | None, *, page_size: int) -> BatchResult:
        params = {"filter.ids": ",".join(batch), "pageSize": str(page_size)}
        if fields:
            params["fields"] = ",".join(fields)
        by_id: dict[str, list[str]] = {}
        for nct_id in batch:  # `nct123` and `NCT00000123` asked together both get the record
            by_id.setdefault(normalize_nct_id(nct_id), []).append(nct_id)
        studies: list[Any] = []
        try:
            for page in self._pages(params, expect=len(batch)):
                studies.extend(page["studies"])
        except ApiError as exc:
            log.warning(
                "api.batch_failed", ids=len(batch), first_id=batch[0], error=str(exc), error_type=type(exc).__name__
            )
            return BatchResult(errors=dict.fromkeys(batch, exc))
        return attribute(batch, by_id, studies)

    def _pages(self, params: Mapping[str, str], *, expect: int | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a `/studies` query, each parsed whole (small pages: probes, the delta query)."""
        pager = Pager(params, expect)
        while (query := pager.next_query()) is not None:
            _, body = self.transport.get("/studies", params=query)
            page = parse_json(body, "/studies")
            if not isinstance(page, dict) or not isinstance(page.get("studies"), list):
                raise InvalidResponse("/studies: not a page of studies")
            yield page
            pager.turn(page, len(page["studies"]))

    def walk(
        self,
        params: Mapping[str, str],
        on_study: Callable[[Any], None],
        *,
        expect: int | None = None,
        ahead: Ahead | None = None,
        then: Mapping[str, str] | None = None,
    ) -> int:
        """Every study of a `/studies` query to `on_study` one at a time, each page spooled and read a study
        at a time (`pages.py`): a page of 1,000 full records takes no more memory than a small one.
        While a page is read, the next is fetched (`ahead.py`); with `ahead` shared between walks and
        `then` (the next walk's first query), the next walk's first page too.
        Returns the number of studies; raises ApiError where a page fails (those before it were whole)."""
        if ahead is None:
            with Ahead(self.studies_body) as own:
                return self.walk(params, on_study, expect=expect, ahead=own, then=then)
        pager = Pager(params, expect)
        while (query := pager.next_query()) is not None:
            with ahead.take(query) as body:
                following = pager.ahead(peek_envelope(body))
                if following is not None:
                    ahead.start(following)
                elif then is not None:
                    ahead.start(then)
                reader = PageReader(body, "/studies")
                for study in reader.studies():
                    on_study(study)
            pager.turn(reader.meta, reader.count)
        return pager.got

    def studies_body(self, query: Mapping[str, str]) -> IO[bytes]:
        """The spooled body of one `/studies` page (rate limit and retries as every request)."""
        return self.transport.get_spooled("/studies", query)
