"""Hostile inputs built in code: a YAML alias bomb, deeply nested study JSON, control characters."""

from __future__ import annotations

import itertools
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOL_LEVELS = 9


def alias_bomb(levels: int = LOL_LEVELS, top: str = "bomb") -> str:
    """'Billion laughs': nine strings, then `levels` lines each of nine aliases of the line before;
    a few hundred bytes that stand for 9**(levels + 1) strings. The last anchor is named `top`."""
    names = [f"l{n}" for n in range(levels)] + [top]
    lines = [f'{names[0]}: &{names[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for before, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{before}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# -- a hostile registry ----------------------------------------------------------------------------


def gzip_of_zeros(size: int) -> bytes:
    """A gzip member that inflates to `size` zero bytes, built a MiB at a time (1,000:1 or so)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size >> 20)]
    parts.append(packer.compress(bytes(size & ((1 << 20) - 1))))
    parts.append(packer.flush())
    return b"".join(parts)


class HostileRegistry:
    """An HTTP server that answers every GET with one hostile behaviour (`mode`):
    `huge` streams `size` bytes; `gzip` sends a gzip that inflates to `size` bytes; `drip` sends its
    headers and then one byte every `interval` seconds, forever; `ok` a small JSON reply."""

    def __init__(self, mode: str = "ok", size: int = 0, interval: float = 2.0) -> None:
        self.mode, self.size, self.interval = mode, size, interval
        self.requests = 0
        self._gzip: bytes | None = None
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests += 1
                try:
                    server.answer(self)
                except OSError:  # the client gave up: what it should do
                    return

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # resets are expected
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v2"

    def prepare(self) -> HostileRegistry:
        """Build the gzip now (not while a test measures its own memory)."""
        if self.mode == "gzip":
            self._gzip = gzip_of_zeros(self.size)
        return self

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        if self.mode == "gzip":
            self._gzip = self._gzip or gzip_of_zeros(self.size)
            self._head(handler, len(self._gzip), gzipped=True)
            handler.wfile.write(self._gzip)
        elif self.mode == "huge":
            self._head(handler, self.size)
            block, sent = b" " * (1 << 20), 0
            while sent < self.size and not self._stop.is_set():
                handler.wfile.write(block[: self.size - sent])
                sent += len(block)
        elif self.mode == "drip":
            self._head(handler, 1 << 20)
            while not self._stop.is_set():
                handler.wfile.write(b" ")
                handler.wfile.flush()
                self._stop.wait(self.interval)
        else:
            body = b'{"apiVersion": "2.0.5", "dataTimestamp": "2026-11-22T09:00:00"}'
            self._head(handler, len(body))
            handler.wfile.write(body)

    @staticmethod
    def _head(handler: BaseHTTPRequestHandler, length: int, *, gzipped: bool = False) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(length))
        if gzipped:
            handler.send_header("Content-Encoding", "gzip")
        handler.end_headers()

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
