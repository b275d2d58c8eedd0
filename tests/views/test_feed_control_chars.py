"""Record text holding characters XML cannot carry: the feed still parses, strictly."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import feedparser

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace

TRIAL = "NCT04728893"
HOSTILE = "Sponsor\x00 decision\x01\x08\x0b\x0c\x1b[31m\ufffe\uffff end"


def stop_with_controls(study: dict[str, Any]) -> None:
    status = study["protocolSection"]["statusModule"]
    status["overallStatus"] = "SUSPENDED"
    status["whyStopped"] = HOSTILE


def test_control_characters_in_a_record_never_make_the_feed_invalid_xml(
    workspace: Workspace, fake_api: FakeCtGov
) -> None:
    workspace.write(trials=[TRIAL], extra="feeds:\n  path: feeds/trialwatch.atom\n")
    assert workspace.cli("check").code == 0
    fake_api.update(TRIAL, stop_with_controls)
    assert workspace.cli("check").code == 0
    on_disk = (workspace.root / "feeds" / "trialwatch.atom").read_bytes()
    for text in (on_disk, workspace.cli("feed").out.encode()):
        root = ElementTree.fromstring(text)  # a strict XML parser: one illegal character is an error
        parsed = feedparser.parse(text)
        assert not parsed.bozo, parsed.get("bozo_exception")
        (content,) = root.iter("{http://www.w3.org/2005/Atom}content")
        assert "Sponsor decision" in (content.text or "") and "end" in (content.text or "")
        assert not any(ch in (content.text or "") for ch in "\x00\x01\x08\x0b\x0c\ufffe\uffff")
