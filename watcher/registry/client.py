"""The ClinicalTrials.gov API v2 client: the one place that speaks HTTP to the registry.

Politeness and robustness live here so the poll logic above it can stay plain:
- one global rate limiter (`requests_per_second`, thread-safe) and a bound on requests in flight;
- retries through tenacity: `Retry-After` honoured on 429/503 (and imposed on every thread through
  the limiter), exponential backoff with jitter on 5xx, timeouts and connection errors, bounded attempts;
- redirects followed on purpose: an alias NCT ID answers 301 and we report the canonical ID;
- every body validated before it leaves: a record that is not JSON, is cut short, is an HTML page,
  lacks `protocolSection` or names another study becomes `InvalidResponse` for that trial only.

httpx types never leave this module; callers see `ApiVersion`, `Fetched`, `BatchResult` and the
`watcher.errors` tree.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

import httpx
import structlog
import tenacity

from watcher import __version__
from watcher.config import ApiSettings
from watcher.errors import AccessDenied, ApiError, InvalidResponse, StudyNotFound, TransientApiError
from watcher.ids import is_nct_id, normalize_nct_id
from watcher.registry import pages
from watcher.registry.pages import Pager, PageReader, spool
from watcher.registry.ratelimit import RateLimiter, retry_after
from watcher.registry.responses import (
    BatchResult,
    Fetched,
    Reply,
    aliases_of,
    attribute,
    parse_json,
    validate_study,
)

log = structlog.get_logger("watcher.registry.client")

# the live edge compares the User-Agent with the TLS client: an httpx client must say it is one (403 otherwise)
USER_AGENT = f"trialwatch/{__version__} python-httpx/{httpx.__version__} (+https://github.com/trialwatch/trialwatch)"
PROBE_FIELDS = ("NCTId", "NCTIdAlias", "LastUpdatePostDate", "OverallStatus")
"""What the cheap probe asks per study: identity, the last posting, and the status, which the registry
also changes without a new posting (e.g. to UNKNOWN when a record is not verified for two years)."""
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_PAGES, MAX_PAGE_SIZE = pages.MAX_PAGES, pages.MAX_PAGE_SIZE  # callers import them from here
MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class ApiVersion:
    api_version: str
    data_timestamp: str  # UTC, yyyy-MM-ddTHH:mm:ss: changes once per data refresh


class _Retryable(TransientApiError):
    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class CtGovClient:
    """ClinicalTrials.gov API v2 over one (injected or created) `httpx.Client`."""

    def __init__(
        self,
        api: ApiSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = api
        self._base = api.base_url.rstrip("/")
        self._own_http = http is None
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(api.timeout, connect=min(api.timeout, 10.0)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # a 301 means "alias": handled in _get on purpose
            limits=httpx.Limits(max_connections=max(1, api.max_concurrency)),
        )
        self._sleep = sleep
        self._limiter = RateLimiter(api.requests_per_second, sleep=sleep)
        self._slots = threading.BoundedSemaphore(max(1, api.max_concurrency))
        self._count_lock = threading.Lock()
        self._requests = 0

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far, retries and redirect hops included."""
        return self._requests

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> CtGovClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # endpoints ---------------------------------------------------------------------------------

    def version(self) -> ApiVersion:
        """The data version: it moves once per daily refresh, so an unmoved one means nothing changed."""
        body = self._get_json("/version")
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
        url, body = self._get(f"/studies/{nct_id}", nct_id=nct_id)
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

    def updated_since(self, day: date) -> dict[str, str]:
        """Every study in the registry updated on or after `day`: NCT ID → lastUpdatePostDate.

        Aliases are keys too, so intersecting with a watchlist finds trials listed under a new ID.
        """
        updates = self.updated_since_within(day, max_pages=MAX_PAGES)
        if updates is None:
            raise InvalidResponse(f"/studies: more than {MAX_PAGES} pages")
        return updates

    def updated_since_within(self, day: date, *, max_pages: int) -> dict[str, str] | None:
        """`updated_since`, or None after one request when the answer would take over `max_pages` pages:
        the caller is better off asking about its own IDs then.
        """
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

    # record history (storage's block: the undocumented /api/int endpoints, parsed in watcher.backfill)

    def get_raw(self, url: str, *, max_bytes: int | None = None, nct_id: str | None = None) -> bytes:
        """The body of a GET on an absolute URL, with this client's rate limit, retries and error
        translation (404 with `nct_id` → StudyNotFound); a body over `max_bytes` is InvalidResponse."""
        response: httpx.Response = self._retrying(url, None, nct_id)
        if response.status_code != 200:
            raise ApiError(f"{url}: HTTP {response.status_code} (redirects are not followed here)")
        body = response.content
        if max_bytes is not None and len(body) > max_bytes:
            raise InvalidResponse(f"{url}: {len(body)} bytes, over the cap of {max_bytes}")
        return body

    def exchange(self, url: str, params: Mapping[str, str] | None = None) -> Reply:
        """One GET as it comes (no retry, redirect or translation) with this client's headers and rate
        limit: what `trialwatch doctor` inspects. A `url` starting with `/` is under `api.base_url`."""
        full = f"{self._base}{url}" if url.startswith("/") else url
        full += f"?{urlencode(params, safe=',')}" if params else ""  # as the poll sends it (`_sending`)
        self._limiter.acquire()
        with self._count_lock:
            self._requests += 1
        agent = self._http.headers.get("User-Agent", "")
        try:
            response = self._http.get(full)
        except httpx.HTTPError as exc:
            return Reply(full, 0, f"{type(exc).__name__}: {exc}".encode(), {}, agent)
        headers = {k.lower(): v for k, v in response.headers.items()}
        return Reply(str(response.url), response.status_code, response.content, headers, agent)

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
            _, body = self._get("/studies", params=query)
            page = parse_json(body, "/studies")
            if not isinstance(page, dict) or not isinstance(page.get("studies"), list):
                raise InvalidResponse("/studies: not a page of studies")
            yield page
            pager.turn(page, len(page["studies"]))

    def walk(self, params: Mapping[str, str], on_study: Callable[[Any], None], *, expect: int | None = None) -> int:
        """Every study of a `/studies` query to `on_study` one at a time, each page spooled and read a study
        at a time (`pages.py`): a page of 1,000 full records takes no more memory than a small one.
        Returns the number of studies; raises ApiError where a page fails (those before it were whole)."""
        pager = Pager(params, expect)
        while (query := pager.next_query()) is not None:
            with self._get_spooled("/studies", query) as body:
                reader = PageReader(body, "/studies")
                for study in reader.studies():
                    on_study(study)
            pager.turn(reader.meta, reader.count)
        return pager.got

    # HTTP --------------------------------------------------------------------------------------

    def _get_json(self, path: str) -> Any:
        _, body = self._get(path)
        return parse_json(body, path)

    def _get(
        self, path: str, *, params: Mapping[str, str] | None = None, nct_id: str | None = None
    ) -> tuple[str, bytes]:
        """(final URL, body) of a 200, following an alias's 301 within the API; retried per settings."""
        url = f"{self._base}{path}"
        for _ in range(MAX_REDIRECTS + 1):
            response = self._retrying(url, params, nct_id)
            if response.status_code != 301:
                return url, response.content
            location = response.headers.get("Location", "")
            target = response.url.join(location)
            if not location or target.host != response.url.host or "/studies/" not in target.path:
                raise ApiError(f"{path}: 301 to an unexpected place: {location!r}")
            url, params = str(target.copy_with(query=None)), dict(target.params) or None
        raise ApiError(f"{path}: too many redirects")

    def _get_spooled(self, path: str, params: Mapping[str, str]) -> IO[bytes]:
        """The body of a 200 copied to a spool as it arrives; the whole exchange is retried as one."""
        body: IO[bytes] = self._retrying(f"{self._base}{path}", params, None, spooled=True)
        return body

    def _retrying(
        self, url: str, params: Mapping[str, str] | None, nct_id: str | None, *, spooled: bool = False
    ) -> Any:
        settings = self.settings
        jitter = tenacity.wait_random_exponential(multiplier=settings.backoff_base, max=settings.backoff_max)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.status == 429 and settings.requests_per_second > 0:
                log.warning("api.slow_down", requests_per_second=round(self._limiter.slow_down(), 3))
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                # the server asked everyone to wait: the limiter holds back every thread, this one too
                self._limiter.defer(exc.retry_after)
                return 0.0
            return float(jitter(state))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = exc.retry_after if isinstance(exc, _Retryable) else None
            log.warning(
                "api.retry",
                url=url,
                nct_id=nct_id,
                attempt=state.attempt_number,
                wait=round(state.upcoming_sleep if retry_after is None else retry_after, 3),
                retry_after=retry_after,
                error=str(exc),
            )

        def sleep(seconds: float) -> None:
            if seconds > 0:
                self._sleep(seconds)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(settings.max_retries + 1),
            wait=wait,
            retry=tenacity.retry_if_exception_type(TransientApiError),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._send_spooled if spooled else self._send, url, params, nct_id)
        except TransientApiError as exc:
            log.error("api.failed", url=url, nct_id=nct_id, error=str(exc))  # noqa: TRY400 - expected, no traceback
            raise

    def _send(self, url: str, params: Mapping[str, str] | None, nct_id: str | None) -> httpx.Response:
        """One request, with httpx's errors and unusable statuses translated into ours."""
        with self._sending(url, params) as response:
            response.read()
        return self._usable(response, url, nct_id)

    def _send_spooled(self, url: str, params: Mapping[str, str] | None, nct_id: str | None) -> IO[bytes]:
        """`_send` for a big body: a 200's body goes to a spool as it arrives, never whole in memory."""
        body = spool()
        try:
            with self._sending(url, params) as response:
                if response.status_code == 200:
                    for chunk in response.iter_bytes():
                        body.write(chunk)
                else:
                    response.read()
            if self._usable(response, url, nct_id).status_code != 200:
                raise ApiError(f"{url}: HTTP {response.status_code} where a page of studies was expected")
        except BaseException:
            body.close()
            raise
        body.seek(0)
        return body

    @contextlib.contextmanager
    def _sending(self, url: str, params: Mapping[str, str] | None) -> Iterator[httpx.Response]:
        """A streamed GET under the rate limit and the concurrency bound, httpx's errors translated. The query
        keeps `,` as it is (RFC 3986 allows it): httpx would send `%2C`, 3 bytes for each ID of a batch."""
        self._limiter.acquire()
        if params:
            url = f"{url}?{urlencode(params, safe=',')}"
        with self._slots:
            with self._count_lock:
                self._requests += 1
            try:
                with self._http.stream("GET", url) as response:
                    yield response
            except httpx.TimeoutException as exc:
                raise _Retryable(f"{url}: timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise _Retryable(f"{url}: {type(exc).__name__}: {exc}") from exc
            except httpx.DecodingError as exc:
                raise InvalidResponse(f"{url}: body could not be decoded: {exc}") from exc
            except httpx.HTTPError as exc:
                raise ApiError(f"{url}: {type(exc).__name__}: {exc}") from exc

    def _usable(self, response: httpx.Response, url: str, nct_id: str | None) -> httpx.Response:
        status = response.status_code
        if status in {200, 301}:
            return response
        if status in RETRY_STATUSES:
            pause = retry_after(response.headers.get("Retry-After"), self.settings.retry_after_max)
            raise _Retryable(f"{url}: HTTP {status}", status=status, retry_after=pause)
        if status == 403:
            agent = response.request.headers.get("User-Agent", "")
            raise AccessDenied(
                f"{url}: HTTP 403 Forbidden. Likely cause: ClinicalTrials.gov's edge compares the User-Agent "
                f"with the TLS client and refuses one that does not name the HTTP library (sent: {agent!r}). "
                "Check that no proxy rewrites the User-Agent or terminates TLS, that api.base_url is the real "
                "API, and whether this IP is blocked (curl https://clinicaltrials.gov/api/v2/version from "
                "this machine). TrialWatch backs off and tries again in a later cycle."
            )
        if status == 404 and nct_id is not None:
            log.info("api.not_found", nct_id=nct_id)
            raise StudyNotFound(nct_id)
        raise ApiError(f"{url}: HTTP {status}: {response.text[:200]}")
