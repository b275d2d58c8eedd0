"""HTTP to ClinicalTrials.gov: the one place that calls httpx.

Politeness and robustness live here so the endpoints above it (`watcher.registry.client`) stay plain:
- one global rate limiter (`requests_per_second`, thread-safe) and a bound on requests in flight;
- retries through tenacity: `Retry-After` honoured on 429/503 (and imposed on every thread through
  the limiter), exponential backoff with jitter on 5xx, timeouts and connection errors, bounded attempts;
- redirects followed on purpose: an alias NCT ID answers 301, and the final URL says which study it is
  (only to the same scheme, host and port, under `/studies/`);
- every reply bounded: at most `MAX_BODY_BYTES` (a page of studies: `MAX_PAGE_BYTES`) once decoded, so
  a gzip that inflates to gigabytes is cut off as it inflates, and the whole exchange (headers and
  body) within `api.timeout`, so a server dripping a byte at a time cannot hold a cycle forever;
- httpx's errors and unusable statuses translated into the `watcher.errors` tree, transient ones
  (which are retried) told from permanent ones (which are not).

httpx types never leave this module: callers get bytes, a spooled body or a `Reply`.
"""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any
from urllib.parse import urlencode

import httpx
import structlog
import tenacity

from watcher import __version__
from watcher.config import ApiSettings
from watcher.config.secrets import split_credentials
from watcher.errors import AccessDenied, ApiError, InvalidResponse, StudyNotFound, TransientApiError
from watcher.registry.pages import spool
from watcher.registry.ratelimit import RateLimiter, retry_after
from watcher.registry.responses import Reply

log = structlog.get_logger("watcher.registry.transport")

# the live edge compares the User-Agent with the TLS client: an httpx client must say it is one (403 otherwise)
USER_AGENT = f"trialwatch/{__version__} python-httpx/{httpx.__version__} (+https://github.com/trialwatch/trialwatch)"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_REDIRECTS = 3
MAX_BODY_BYTES = 32 << 20
"""A reply read whole: the largest real record measured is 1.5 MB and the largest real list page 0.5 MB
(`python -m bench.bench_reply_sizes` prints them); 32 MiB is over twenty times either."""
MIN_RATE = 64 << 10
"""Bytes per second a reply must keep up, on average, once `api.timeout` has passed: a big page on a slow
link still arrives, a server dripping a byte every few seconds fails at `api.timeout`."""
MAX_PAGE_BYTES = 1 << 30
"""A page of up to 1,000 full records, spooled to disk and read a study at a time: a full page of real
records runs to about 50 MB (1,000 × 50 KB); 1 GiB is twenty times that, and bounds the disk it takes."""


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    """Scheme, host and port (a default port spelled or not counts as the same)."""
    return (a.scheme, a.host, a.port or _DEFAULT_PORTS.get(a.scheme)) == (
        b.scheme,
        b.host,
        b.port or _DEFAULT_PORTS.get(b.scheme),
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


INFLATE_STEP = 1 << 20
"""Bytes inflated at a time. httpx inflates each network read whole, and one 64 KiB read of a gzip bomb
is 64 MiB at once; inflating a step at a time lets the byte cap stop it within a step."""


class _UnaskedEncoding(Exception):
    pass


def _decoded(response: httpx.Response) -> Iterator[bytes]:
    """The body, decoded `INFLATE_STEP` bytes at most at a time (we ask only for gzip and deflate)."""
    if response.is_stream_consumed:  # a reply built in memory (a test's transport): already decoded
        yield response.content
        return
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        yield from response.iter_raw()
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise _UnaskedEncoding(f"Content-Encoding {encoding!r} was not asked for")
    wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    for raw in response.iter_raw():
        data = raw
        while data:
            out = inflater.decompress(data, INFLATE_STEP)
            if out:
                yield out
            data = inflater.unconsumed_tail
            if not data and inflater.eof and inflater.unused_data:  # gzip: another member follows
                data, inflater = inflater.unused_data, zlib.decompressobj(wbits)
    tail = inflater.flush()
    if tail:
        yield tail


_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
"""Headers that describe the body as sent; the body kept is decoded and whole."""


class _Retryable(TransientApiError):
    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Transport:
    """GETs to the registry over one (injected or created) `httpx.Client`, under the settings' rate
    limit, concurrency bound and retry policy."""

    def __init__(
        self,
        api: ApiSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = api
        base, self._auth = split_credentials(api.base_url)
        self.base = base.rstrip("/")  # credentials never in a URL we send, log or put in an error
        self._origin = httpx.URL(self.base)
        self._own_http = http is None
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(api.timeout, connect=min(api.timeout, 10.0)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "gzip, deflate"},
            follow_redirects=False,  # a 301 means "alias": handled in `get` on purpose
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

    # what the endpoints and their neighbours ask for -------------------------------------------

    def get(
        self, path: str, *, params: Mapping[str, str] | None = None, nct_id: str | None = None
    ) -> tuple[str, bytes]:
        """(final URL, body) of a 200 for a path under `api.base_url`, following an alias's 301 within
        the API; retried per settings; a 404 with `nct_id` is StudyNotFound."""
        url = f"{self.base}{path}"
        for _ in range(MAX_REDIRECTS + 1):
            response = self._retrying(url, params, nct_id)
            if response.status_code != 301:
                return url, response.content
            location = response.headers.get("Location", "")
            target = response.url.join(location)
            if not location or not _same_origin(target, response.url) or "/studies/" not in target.path:
                raise ApiError(f"{path}: 301 to an unexpected place: {location!r}")
            url, params = str(target.copy_with(query=None)), dict(target.params) or None
        raise ApiError(f"{path}: too many redirects")

    def get_spooled(self, path: str, params: Mapping[str, str]) -> IO[bytes]:
        """The body of a 200 copied to a spool as it arrives; the whole exchange is retried as one."""
        body: IO[bytes] = self._retrying(f"{self.base}{path}", params, None, spooled=True)
        return body

    def get_raw(self, url: str, *, max_bytes: int | None = None, nct_id: str | None = None) -> bytes:
        """The body of a GET on an absolute URL (the record history's endpoints), with the same rate limit,
        retries and error translation (404 with `nct_id` → StudyNotFound); a body over `max_bytes` is
        InvalidResponse."""
        response: httpx.Response = self._retrying(url, None, nct_id)
        if response.status_code != 200:
            raise ApiError(f"{url}: HTTP {response.status_code} (redirects are not followed here)")
        body = response.content
        if max_bytes is not None and len(body) > max_bytes:
            raise InvalidResponse(f"{url}: {len(body)} bytes, over the cap of {max_bytes}")
        return body

    def exchange(self, url: str, params: Mapping[str, str] | None = None) -> Reply:
        """One GET as it comes (no retry, redirect or translation) with these headers and rate limit:
        what `trialwatch doctor` inspects. A `url` starting with `/` is under `api.base_url`."""
        full = f"{self.base}{url}" if url.startswith("/") else url
        full += f"?{urlencode(params, safe=',')}" if params else ""  # as the poll sends it (`_sending`)
        self._limiter.acquire()
        self._count()
        agent = self._http.headers.get("User-Agent", "")
        deadline = time.monotonic() + self.settings.timeout
        body = bytearray()
        try:
            with self._http.stream("GET", full, auth=self._auth_for(full)) as response:
                self._read_bounded(response, body.extend, MAX_BODY_BYTES, deadline, full)
        except (httpx.HTTPError, ApiError) as exc:
            return Reply(full, 0, f"{type(exc).__name__}: {exc}".encode(), {}, agent)
        headers = {k.lower(): v for k, v in response.headers.items()}
        return Reply(str(response.url), response.status_code, bytes(body), headers, agent)

    # retries -----------------------------------------------------------------------------------

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

    # one request -------------------------------------------------------------------------------

    def _send(self, url: str, params: Mapping[str, str] | None, nct_id: str | None) -> httpx.Response:
        """One request, with httpx's errors and unusable statuses translated into ours."""
        body = bytearray()
        with self._sending(url, params) as (response, deadline):
            self._read_bounded(response, body.extend, MAX_BODY_BYTES, deadline, url)
        whole = httpx.Response(
            response.status_code,
            headers=[(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS],
            content=bytes(body),
            request=response.request,
        )
        return self._usable(whole, url, nct_id)

    def _read_bounded(
        self, response: httpx.Response, sink: Callable[[bytes], Any], limit: int, deadline: float, url: str
    ) -> None:
        """The decoded body to `sink`, refused past `limit` bytes, or once the exchange has taken longer than
        `deadline` (start + api.timeout) plus the time the bytes so far need at `MIN_RATE`."""
        total = 0
        try:
            for chunk in _decoded(response):
                total += len(chunk)
                if total > limit:
                    raise InvalidResponse(f"{url}: the reply is over {limit:,} bytes (decoded); refused")
                if time.monotonic() > deadline + total / MIN_RATE:
                    raise _Retryable(f"{url}: the reply took longer than api.timeout ({self.settings.timeout:g} s)")
                sink(chunk)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"{url}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"{url}: {type(exc).__name__}: {exc}") from exc
        except (httpx.DecodingError, zlib.error) as exc:
            raise InvalidResponse(f"{url}: body could not be decoded: {exc}") from exc
        except _UnaskedEncoding as exc:
            raise InvalidResponse(f"{url}: {exc}") from None

    def _send_spooled(self, url: str, params: Mapping[str, str] | None, nct_id: str | None) -> IO[bytes]:
        """`_send` for a big body: a 200's body goes to a spool as it arrives, never whole in memory."""
        body = spool()
        try:
            with self._sending(url, params) as (response, deadline):
                if response.status_code == 200:
                    self._read_bounded(response, body.write, MAX_PAGE_BYTES, deadline, url)
                else:
                    self._read_bounded(response, lambda _: None, MAX_BODY_BYTES, deadline, url)
            if self._usable(response, url, nct_id).status_code != 200:
                raise ApiError(f"{url}: HTTP {response.status_code} where a page of studies was expected")
        except BaseException:
            body.close()
            raise
        body.seek(0)
        return body

    @contextlib.contextmanager
    def _sending(self, url: str, params: Mapping[str, str] | None) -> Iterator[tuple[httpx.Response, float]]:
        """A streamed GET under the rate limit and the concurrency bound, httpx's errors translated, with
        the deadline of the whole exchange (`api.timeout` from when it is sent: waiting for the rate limit
        or a free slot does not count). The query keeps `,` as it is (RFC 3986 allows it): httpx would
        send `%2C`, 3 bytes for each ID of a batch."""
        self._limiter.acquire()
        if params:
            url = f"{url}?{urlencode(params, safe=',')}"
        with self._slots:
            self._count()
            deadline = time.monotonic() + self.settings.timeout
            try:
                with self._http.stream("GET", url, auth=self._auth_for(url)) as response:
                    yield response, deadline
            except httpx.TimeoutException as exc:
                raise _Retryable(f"{url}: timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise _Retryable(f"{url}: {type(exc).__name__}: {exc}") from exc
            except httpx.DecodingError as exc:
                raise InvalidResponse(f"{url}: body could not be decoded: {exc}") from exc
            except httpx.HTTPError as exc:
                raise ApiError(f"{url}: {type(exc).__name__}: {exc}") from exc

    def _auth_for(self, url: str) -> httpx.BasicAuth | None:
        """api.base_url's credentials, for its own scheme, host and port only (never for another host,
        such as a separate `backfill.base_url`)."""
        if self._auth is None or not _same_origin(httpx.URL(url), self._origin):
            return None
        return httpx.BasicAuth(*self._auth)

    def _count(self) -> None:
        with self._count_lock:
            self._requests += 1

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
