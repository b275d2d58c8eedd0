"""What one notify tick costs with a big backlog: 10,000 messages pending in the outbox.

Two scenarios, both through `notify_tick` exactly as the service calls it (every few seconds):

- idle: two channels are down (their queue heads wait for a retry an hour away), one of them has a
  heartbeat; the tick has nothing to send and should cost next to nothing, whatever the backlog.
- sending: a channel that came back drains its queue; ms per message delivered (claim + mark; the
  channel itself is a stub that accepts at once, so only the outbox's work is measured).

Figures are in ms and as multiples of one `json.loads` of a typical change-set payload, measured in
the same run (so machines compare).

    python bench/bench_outbox.py                         # SQLite in a temporary directory
    python bench/bench_outbox.py --url postgresql+psycopg://postgres@127.0.0.1:5432/DB   # an empty database
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from watcher.config import Config, load_config  # noqa: E402
from watcher.messages import NewMessage, encode_payload  # noqa: E402
from watcher.notify.formats import Rendered  # noqa: E402
from watcher.notify.payloads import notify_tick, sample_payload  # noqa: E402
from watcher.notify.send import Sender  # noqa: E402
from watcher.service.logs import configure  # noqa: E402
from watcher.store import Store  # noqa: E402
from watcher.store.meta import HEARTBEAT_LAST  # noqa: E402

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class AcceptAll(Sender):
    """A channel that accepts every message at once: the bench measures the outbox, not a network."""

    def send(self, channel_name: str, rendered: Rendered, **kwargs: Any) -> None:
        return


def _config(root: Path, url: str) -> Config:
    settings = root / "trialwatch.yaml"
    (root / "watchlist.yaml").write_text("trials:\n  - NCT04728893\n")
    settings.write_text(
        f"watchlist: watchlist.yaml\nstorage:\n  url: {url}\nchannels:\n"
        "  down-a:\n    url: json://127.0.0.1:9/a\n    heartbeat: 1d\n"
        "  down-b:\n    url: json://127.0.0.1:9/b\n"
        "  back:\n    url: json://127.0.0.1:9/c\n"
    )
    return load_config(settings)


def _per_call(fn: Any, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def run(url: str, root: Path, pending: int, ticks: int) -> dict[str, float]:
    config = _config(root, url)
    with Store(url) as store:
        payload = sample_payload(T0)
        names = ("down-a", "down-b")
        store.outbox.enqueue([NewMessage(names[n % 2], payload) for n in range(pending)], T0)
        for name in names:  # each down channel's head was refused; its retry is an hour away
            claim = store.outbox.claim_next(T0, lease_until=T0 + timedelta(minutes=5), channel=name)
            assert claim is not None
            store.outbox.finish_failed(claim[0].id, "HTTP 503", retry_at=T0 + timedelta(hours=1))
        store.meta.set(HEARTBEAT_LAST.of("down-a"), T0)
        sender = AcceptAll(config.settings.channels)
        now = T0 + timedelta(minutes=1)

        def idle() -> None:
            outcomes = notify_tick(config, store, now=lambda: now, sender=sender)
            assert outcomes == [], outcomes

        idle()  # warm caches and connections
        idle_s = _per_call(idle, ticks)

        batch = 500
        store.outbox.enqueue([NewMessage("back", payload) for _ in range(batch)], T0)
        started = time.perf_counter()
        notify_tick(config, store, now=lambda: now, sender=sender)  # a tick waits 5 s at most; its worker goes on
        while store.outbox.counts_by_channel()["back"] != {"sent": batch}:
            time.sleep(0.005)
        send_s = (time.perf_counter() - started) / batch

    text = json.dumps(encode_payload(payload))
    loads_s = _per_call(lambda: json.loads(text), 2000)
    return {"idle_ms": idle_s * 1000, "send_ms": send_s * 1000, "loads_ms": loads_s * 1000}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="an empty database (default: SQLite in a temporary directory)")
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args(argv)
    configure(level="warning", fmt="console")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        figures = run(url, Path(tmp), args.pending, args.ticks)
    loads = figures["loads_ms"]
    print(f"outbox bench: {args.pending:,} messages pending, {url.split(':', 1)[0]}")
    print(f"json.loads of one change-set payload: {loads:.4f} ms")
    print(f"idle tick (nothing due):    {figures['idle_ms']:8.2f} ms  = {figures['idle_ms'] / loads:8.0f}× json.loads")
    print(f"sending, per message:       {figures['send_ms']:8.2f} ms  = {figures['send_ms'] / loads:8.0f}× json.loads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
