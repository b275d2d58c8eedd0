"""A `/studies` page read one study at a time, so its size does not decide the memory it takes.

A page of 1,000 full records runs from a few to over 100 MB of JSON, and as Python objects about
ten times that. The body is first copied to a spool (in memory up to `SPOOL_MEMORY`, then a
temporary file), so the HTTP exchange ends, and can be retried, before anything is handed on; then
`PageReader` walks the envelope by hand and decodes each element of `studies` with the standard
library's C decoder (`json.JSONDecoder.raw_decode`) on a window of the text, growing the window when a
study does not fit. Each byte is decoded about once: measured against `ijson`'s C backend
(yajl2_c), which builds objects twice as slowly as `json.loads` on real records, this keeps a page at
the cost of `json.loads` (`bench/bench_cycle.py` prints the ratio).

A study nested deeper than the decoder can follow (a `RecursionError`) is skipped by a scanner that
does not recurse and handed on as `Unreadable`, so that ID fails and the rest of the page is read.
What is read stays as checked as before: an HTML page served with 200, a body cut short or not JSON
is `InvalidResponse`, raised where it is found; studies read before it were whole and may be used.
"""

from __future__ import annotations

import codecs
import json
import re
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

from watcher.errors import InvalidResponse
from watcher.registry.responses import Unreadable

SPOOL_MEMORY = 8 << 20  # bytes of a body kept in memory; the rest goes to a temporary file
CHUNK = 2 << 20  # bytes read from the spool at a time
MAX_PAGES = 10_000
MAX_PAGE_SIZE = 1000  # the API coerces anything above down to this
_SPACE = re.compile(r"[ \t\n\r]*")
_STRUCTURE = re.compile(r'[{}\[\]"]')
_STRING_END = re.compile(r'["\\]')
_NCT_ID = re.compile(r'"nctId"\s*:\s*"([^"\\]{1,40})"')


def spool() -> IO[bytes]:
    """Where a body is copied as it arrives."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)


class PageReader:
    """`studies()` yields each study of a page; afterwards `meta` holds the other top-level keys
    (`nextPageToken`, `totalCount`)."""

    def __init__(self, body: IO[bytes], where: str) -> None:
        self._body = body
        self._where = where
        self._text = ""
        self._pos = 0
        self._eof = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._decoder = json.JSONDecoder(parse_constant=self._constant)
        self.meta: dict[str, Any] = {}
        self.count = 0

    def studies(self) -> Iterator[Any]:
        self._read(CHUNK)
        if self._text[:200].lstrip().lower().startswith(("<!doctype", "<html")):
            raise InvalidResponse(f"{self._where}: an HTML page instead of JSON")
        found = False
        for key in self._members():
            if key == "studies" and self._peek() == "[":
                found = True
                for study in self._elements(skip_too_deep=True):
                    self.count += 1
                    yield study
            else:
                self.meta[key] = self._value()
        if self._peek(end_ok=True):
            raise self._bad("not JSON (extra data after the page)")
        if not found:
            raise InvalidResponse(f"{self._where}: not a page of studies")

    # -- the envelope ----------------------------------------------------------------------------

    def _members(self) -> Iterator[str]:
        """The keys of the top-level object; the caller reads each member's value before the next key."""
        self._expect("{")
        if self._peek() == "}":
            self._pos += 1
            return
        while True:
            key = self._value()
            if not isinstance(key, str):
                raise self._bad("not JSON (an object key is not a string)")
            self._expect(":")
            yield key
            if self._expect(",}") == "}":
                return

    def _elements(self, *, skip_too_deep: bool = False) -> Iterator[Any]:
        """The values of the array that starts here, one at a time; with `skip_too_deep`, a value nested
        past what the decoder can follow comes as `Unreadable` instead of ending the page."""
        self._expect("[")
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            try:
                yield self._value()
            except RecursionError:
                if not skip_too_deep:
                    raise self._bad("JSON nested too deeply") from None
                found = _NCT_ID.search(self._skip())
                yield Unreadable(found.group(1) if found else None, "the record is nested too deeply to read")
            if self._expect(",]") == "]":
                return

    def _skip(self) -> str:
        """Move past the object or array at the cursor without decoding it (no recursion: a counter of
        open brackets); returns its text."""
        self._peek()
        depth, at = 0, self._pos
        while True:
            found = _STRUCTURE.search(self._text, at)
            if found is None:
                at = len(self._text) - self._pos
                if not self._read(CHUNK):
                    raise self._bad("truncated JSON (the body ends inside a study)")
                at += self._pos
                continue
            char, at = found.group(), found.end()
            if char == '"':
                at = self._string_end(at)
                continue
            depth += 1 if char in "{[" else -1
            if depth == 0:
                text, self._pos = self._text[self._pos : at], at
                return text

    def _string_end(self, at: int) -> int:
        """The index after the string whose body starts at `at` (reading more text as needed)."""
        while True:
            found = _STRING_END.search(self._text, at)
            if found is None or found.end() >= len(self._text):
                at = (found.start() if found else len(self._text)) - self._pos
                if not self._read(CHUNK):
                    raise self._bad("truncated JSON (the body ends inside a string)")
                at += self._pos
                continue
            if found.group() == '"':
                return found.end()
            at = found.end() + 1  # a backslash escapes the next character

    # -- the text window -------------------------------------------------------------------------

    def _read(self, at_least: int) -> bool:
        """Append at least `at_least` bytes' worth of text (less at the end); False at the end."""
        if self._eof:
            return False
        parts = [self._text[self._pos :]]
        got = 0
        while got < at_least:
            data = self._body.read(max(CHUNK, at_least - got))
            if not data:
                self._eof = True
                try:
                    parts.append(self._utf8.decode(b"", final=True))
                except UnicodeDecodeError as exc:
                    raise self._bad(f"not JSON ({exc})") from exc
                break
            got += len(data)
            try:
                parts.append(self._utf8.decode(data))
            except UnicodeDecodeError as exc:
                raise self._bad(f"not JSON ({exc})") from exc
        self._text, self._pos = "".join(parts), 0
        return True

    def _peek(self, *, end_ok: bool = False) -> str:
        while True:
            self._pos = _SPACE.match(self._text, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._text):
                return self._text[self._pos]
            if not self._read(CHUNK):
                if end_ok:
                    return ""
                raise self._bad("truncated JSON (the body ends inside the page)")

    def _expect(self, allowed: str) -> str:
        char = self._peek()
        if char not in allowed:
            raise self._bad(f"not JSON (expected one of {allowed!r} at {char!r})")
        self._pos += 1
        return char

    def _value(self) -> Any:
        """The next JSON value; the window doubles until it holds it, so a study is decoded about once."""
        self._peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._text, self._pos)
            except json.JSONDecodeError as exc:
                if not self._read(len(self._text) - self._pos):
                    what = (
                        "truncated JSON" if exc.pos >= len(self._text) - 64 or "Unterminated" in exc.msg else "not JSON"
                    )
                    raise self._bad(f"{what} ({exc.msg})") from exc
                continue
            if len(self._text) - end < 4 and not isinstance(value, dict | list | str) and self._read(CHUNK):
                continue  # a number at the window's edge may go on in the next chunk (`7` of `7.5e3`)
            self._pos = end
            return value

    def _constant(self, name: str) -> Any:
        raise self._bad(f"not JSON ({name} is not a JSON number)")

    def _bad(self, what: str) -> InvalidResponse:
        return InvalidResponse(f"{self._where}: {what}, after {self.count} studies")


class Pager:
    """Which page to ask for next.

    The live service hands out a `nextPageToken` with every exactly full page, even when nothing
    is left, so a token is followed only when more studies can exist: not after a page shorter than
    `pageSize`, nor once `expect` studies (at most one per ID asked) or the first page's
    `totalCount` have arrived. An empty page is paid for only when neither can tell.
    """

    def __init__(self, params: Mapping[str, str], expect: int | None) -> None:
        self.params = params
        self.size = min(int(params.get("pageSize", "0")) or 10, MAX_PAGE_SIZE)
        self.expect = expect
        self.token: str | None = None
        self.seen: set[str] = set()
        self.got = 0
        self.pages = 0
        self.done = False

    def next_query(self) -> dict[str, str] | None:
        if self.done:
            return None
        if self.pages >= MAX_PAGES:
            raise InvalidResponse(f"/studies: more than {MAX_PAGES} pages")
        query = dict(self.params)
        if self.token is not None:
            query.pop("countTotal", None)
            query["pageToken"] = self.token
        return query

    def ahead(self, envelope: Mapping[str, Any]) -> dict[str, str] | None:
        """The query after the page whose envelope (`ahead.peek_envelope`) this is, when the walk will
        surely go on past it: a token, and more studies expected than this page can hold even if
        full. Otherwise None: a guess must never cost a request the walk would not have sent."""
        token = envelope.get("nextPageToken")
        expect = self.expect
        if self.pages == 0 and isinstance(envelope.get("totalCount"), int):
            expect = envelope["totalCount"]
        if self.done or not isinstance(token, str) or not token or token in self.seen or expect is None:
            return None
        if self.got + self.size >= expect or self.pages + 1 >= MAX_PAGES:
            return None
        query = dict(self.params)
        query.pop("countTotal", None)
        query["pageToken"] = token
        return query

    def turn(self, page: Mapping[str, Any], count: int) -> None:
        if self.pages == 0 and isinstance(page.get("totalCount"), int):
            self.expect = page["totalCount"]
        self.pages += 1
        self.got += count
        token = page.get("nextPageToken")
        if not token or count < self.size or (self.expect is not None and self.got >= self.expect):
            self.done = True
            return
        if not isinstance(token, str) or token in self.seen:
            raise InvalidResponse("/studies: nextPageToken repeats or is not a string")
        self.seen.add(token)
        self.token = token
