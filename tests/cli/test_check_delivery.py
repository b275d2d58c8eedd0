"""`check` sends everything due before it exits, and says what it leaves queued and why.

Real peers: the fake ClinicalTrials.gov, an SMTP server (aiosmtpd), a webhook receiver answering in
150 ms as hosted ones do, and a TCP peer that never answers; `check` runs as a real process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeapi import FakeCtGov, synthetic_studies
from tests.support.peers import SilentPeer, SmtpServer, WebhookReceiver
from tests.support.workspace import Workspace

TRIALS = 120


def suspend(study: dict[str, Any]) -> None:
    status = study["protocolSection"]["statusModule"]
    status["overallStatus"] = "SUSPENDED"
    status["whyStopped"] = "Sponsor decision"


@pytest.fixture
def many(tmp_path: Path) -> Iterator[tuple[FakeCtGov, Workspace]]:
    with FakeCtGov(synthetic_studies(TRIALS)) as fake:
        ws = Workspace(tmp_path, fake.base_url)
        try:
            yield fake, ws
        finally:
            ws.close()


@pytest.mark.slow
def test_check_leaves_nothing_in_the_outbox(
    many: tuple[FakeCtGov, Workspace], smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    fake, ws = many
    webhook.delay = 0.15
    ids = fake.ids()
    assert len(ids) == TRIALS
    ws.write(trials=ids, channels={"email": {"url": smtp_server.url()}, "hook": {"url": webhook.url()}})
    first = ws.process("check")
    assert first.code == 0, first.err
    for nct_id in ids:
        fake.update(nct_id, suspend)

    second = ws.process("check", timeout=300)

    assert second.code == 0, second.err
    assert "left queued" not in second.err
    store = ws.store()
    counts = store.outbox.counts()
    assert counts == {"sent": 2 * TRIALS}, counts
    assert store.outbox.queued() == []
    assert len(smtp_server.messages) == TRIALS
    assert len(webhook.requests) == TRIALS
    assert {r.json()["message_id"] for r in webhook.requests} == {
        m.id for m in store.outbox.messages() if m.channel == "hook"
    }


@pytest.mark.slow
def test_a_hung_channel_is_bounded_by_its_timeout_and_named_on_stderr(
    workspace: Workspace, fake_api: FakeCtGov, smtp_server: SmtpServer, silent_peer: SilentPeer
) -> None:
    ids = fake_api.ids()[:3]
    workspace.write(
        trials=ids,
        channels={"email": {"url": smtp_server.url()}, "ops-hook": {"url": silent_peer.url(), "timeout": "2s"}},
    )
    assert workspace.process("check").code == 0
    for nct_id in ids:
        fake_api.update(nct_id, suspend)

    started = time.monotonic()
    result = workspace.process("check", timeout=120)
    took = time.monotonic() - started

    assert result.code == 0, result.err
    assert len(smtp_server.messages) == len(ids), "the hung webhook held back only its own messages"
    assert took < 60, f"check took {took:.0f} s"
    line = next(line for line in result.err.splitlines() if "left queued" in line)
    assert re.search(r"3 messages to 'ops-hook' left queued: next attempt at \d{4}-\d\d-\d\d \d\d:\d\d UTC", line), line
    assert "did not answer within 2 s" in line
    assert str(silent_peer.port) not in line, "an error names the channel, never its URL"
    queued = {q.channel: q.count for q in workspace.store().outbox.queued()}
    assert queued == {"ops-hook": 3}
