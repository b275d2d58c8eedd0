"""The soak's channel peers: an SMTP server and a webhook receiver whose mood the soak sets.

Each is `ok` (accepts and records), `refuse` (answers an error at once: 451 / 503) or `hang`
(takes the message and answers nothing until the hang ends, then refuses it). Only an accepted
delivery is recorded, with the time it was accepted, so "delivered" means what the sender was told.
Every request is also noted with its outcome (`Mood.met`): the report judges the channel's outages as
the service met them (a channel refusing while nothing was sent to it held nothing back).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

MOODS = ("ok", "refuse", "hang")


@dataclass
class Delivered:
    """One accepted delivery: when, and what arrived (the webhook's JSON, or the email's text part)."""

    at: float  # time.time() when the peer accepted it
    body: dict[str, Any] | None = None
    text: str = ""
    subject: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Met:
    """One request a peer answered: when it came, when it was answered (a hang ends late), accepted or not."""

    start: float
    end: float
    accepted: bool


class Mood:
    """The peer's current behaviour; a hang ends when the mood changes (or `hang_limit` passes)."""

    def __init__(self, hang_limit: float) -> None:
        self.value = "ok"
        self.hang_limit = hang_limit
        self.changed = threading.Condition()
        self.counts: dict[str, int] = dict.fromkeys(MOODS, 0)  # requests met in each mood
        self.met: list[Met] = []  # every request, with what it was answered

    def set(self, value: str) -> None:
        with self.changed:
            self.value = value
            self.changed.notify_all()

    def meet(self) -> str:
        """The mood a request meets; while hanging, block until the hang is over, then refuse."""
        start = time.time()
        with self.changed:
            mood = self.value
            self.counts[mood] += 1
            if mood == "hang":
                deadline = time.monotonic() + self.hang_limit
                while self.value == "hang" and time.monotonic() < deadline:
                    self.changed.wait(timeout=0.2)
                mood = "refuse"
            self.met.append(Met(start, time.time(), mood == "ok"))
            return mood


class SmtpPeer:
    """aiosmtpd with AUTH LOGIN/PLAIN (no TLS, loopback only) checking the planted password."""

    def __init__(self, port: int, user: str, password: str, hang_limit: float = 120.0) -> None:
        self.user, self.password = user, password
        self.mood = Mood(hang_limit)
        self.delivered: list[Delivered] = []
        self.auth_failures = 0
        self._lock = threading.Lock()
        self.port = port
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            auth_required=True,
        )

    def _authenticate(self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and data.password.decode() == self.password
        )
        if not ok:
            self.auth_failures += 1
        return AuthResult(success=ok)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        mood = await asyncio.get_running_loop().run_in_executor(None, self.mood.meet)
        if mood != "ok":
            return "451 4.3.0 soak: try again later"
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        part = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
        text = part.get_content() if part is not None else ""
        with self._lock:
            self.delivered.append(Delivered(time.time(), text=text, subject=str(message["Subject"] or "")))
        return "250 Message accepted for delivery"

    def start(self) -> SmtpPeer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self.mood.set("ok")
        self._controller.stop()


class WebhookPeer:
    """An HTTP receiver for apprise's json:// that checks the planted token in the path."""

    def __init__(self, token: str, hang_limit: float = 120.0) -> None:
        self.token = token
        self.mood = Mood(hang_limit)
        self.delivered: list[Delivered] = []
        self.wrong_path = 0
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status = 503
                if self.path.split("?")[0] != f"/hook/{peer.token}":
                    peer.wrong_path += 1
                    status = 404
                elif peer.mood.meet() == "ok":
                    status = 200
                    with peer._lock:
                        peer.delivered.append(
                            Delivered(time.time(), body=json.loads(body), headers=dict(self.headers.items()))
                        )
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the sender gave up while the peer hung

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])

    def start(self) -> WebhookPeer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.mood.set("ok")
        self._server.shutdown()
        self._server.server_close()
