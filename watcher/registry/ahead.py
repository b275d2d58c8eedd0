"""The next page of studies fetched while this one is read and stored.

A page of 1,000 full records takes the live service seconds to produce and us seconds to read, check
and store; done one after the other, each waits for the other. `Ahead` keeps at most one `/studies`
request in flight on a worker thread while the caller works through the page in hand, so the
exchange overlaps the storing. Only the download overlaps: the body is spooled (`pages.spool`) and
parsed on the caller's thread, so no more than one extra page's bytes are held, none of it parsed.

Which page comes next is known only once a page is read (its `nextPageToken`), and a page that
turns out to be the last must not cost a request the sequential walk would not have sent. So the
guess is made from the envelope alone (`peek_envelope`: the token and `totalCount` sit before or
after the `studies` array, never inside it) and only when the walk will surely go on (`Pager.ahead`);
the walk then takes the prefetched body only if its query is exactly the one it would have asked.
A wrong guess is discarded, never read.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

Fetch = Callable[[Mapping[str, str]], IO[bytes]]

_PEEK = 4096  # bytes of a body's head and tail looked at for the envelope
_MEMBER = re.compile(r'"(nextPageToken|totalCount)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)')


class Ahead:
    """One `/studies` request at a time fetched ahead on a worker thread; use as a context manager."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[dict[str, str], Future[IO[bytes]]] | None = None

    def start(self, query: Mapping[str, str]) -> None:
        """Begin fetching `query` in the background (replacing a pending guess, which is discarded)."""
        self.discard()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fetch-ahead")
        context = contextvars.copy_context()  # the cycle's bound log context follows the request
        self._pending = (dict(query), self._pool.submit(context.run, self._fetch, query))

    def take(self, query: Mapping[str, str]) -> IO[bytes]:
        """The body of `query`: the prefetched one when it was the guess (its error raised here, in
        turn), else fetched now."""
        if self._pending is not None and self._pending[0] == dict(query):
            future = self._pending[1]
            self._pending = None
            return future.result()
        self.discard()
        return self._fetch(query)

    def discard(self) -> None:
        """Drop a pending guess: wait for it (a request is never left running) and close its body."""
        if self._pending is None:
            return
        future = self._pending[1]
        self._pending = None
        if not future.cancel():
            with contextlib.suppress(Exception):
                future.result().close()

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def peek_envelope(body: IO[bytes]) -> dict[str, Any]:
    """`nextPageToken` and `totalCount` of a spooled page, read from the bytes before the `studies`
    array and after its end; {} when they are not found there. The body is left at its start."""
    head = body.read(_PEEK)
    body.seek(0, 2)
    size = body.tell()
    body.seek(max(0, size - _PEEK))
    tail = body.read()
    body.seek(0)
    outside = []
    opening = head.find(b'"studies"')
    if opening > 0:
        outside.append(head[:opening])
    closing = tail.rfind(b"]")
    if closing >= 0:
        outside.append(tail[closing + 1 :])
    found: dict[str, Any] = {}
    for part in outside:
        for match in _MEMBER.finditer(part.decode("utf-8", "replace")):
            with contextlib.suppress(ValueError):
                found[match.group(1)] = json.loads(match.group(2))
    return found
