"""A study nested a thousand levels deep: that ID fails, every other study of the page is read."""

from __future__ import annotations

import io
import json

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace
from watcher.errors import InvalidResponse
from watcher.registry import pages
from watcher.registry.pages import PageReader
from watcher.registry.responses import MAX_DEPTH, Unreadable, parse_json, validate_study

A, B, C = "NCT04728893", "NCT03418623", "NCT05000000"


def nested(levels: int) -> bytes:
    return b'{"n": ' * levels + b"1" + b"}" * levels


def study(nct: str, extra: bytes = b"") -> bytes:
    """A small study whose JSON holds strings made to confuse a bracket counter."""
    head = json.dumps({"protocolSection": {"identificationModule": {"nctId": nct, "briefTitle": 'a "[{" \\ }]'}}})
    return head[:-1].encode() + (b', "nested": ' + extra if extra else b"") + b"}"


@pytest.mark.parametrize("chunk", [7, 64, 2 << 20])
def test_a_study_too_deep_to_decode_is_unreadable_and_the_page_goes_on(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "CHUNK", chunk)
    body = b'{"studies": [' + b", ".join([study(A), study(B, nested(200_000)), study(C)]) + b'], "totalCount": 3}'
    reader = PageReader(io.BytesIO(body), "/studies")
    first, second, third = list(reader.studies())
    assert second == Unreadable(B, "the record is nested too deeply to read")
    assert first["protocolSection"]["identificationModule"]["nctId"] == A
    assert third["protocolSection"]["identificationModule"]["briefTitle"] == 'a "[{" \\ }]'
    assert reader.meta == {"totalCount": 3} and reader.count == 3
    with pytest.raises(InvalidResponse, match="nested too deeply"):
        validate_study(second, B)


def test_a_record_the_decoder_reads_but_nests_past_the_bound_is_invalid() -> None:
    record = json.loads(study(A, nested(MAX_DEPTH + 1)))
    with pytest.raises(InvalidResponse, match=f"deeper than {MAX_DEPTH}"):
        validate_study(record, A)
    assert validate_study(json.loads(study(A, nested(10))), A).nct_id == A


def test_a_single_study_reply_too_deep_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidResponse, match="nested too deeply"):
        parse_json(study(A, nested(100_000)), f"/studies/{A}")


@pytest.mark.parametrize("levels", [200, 1000, 100_000])
def test_one_deep_study_in_a_batch_fails_alone(workspace: Workspace, fake_api: FakeCtGov, levels: int) -> None:
    workspace.write(trials=[A, B], api={"max_retries": 0})
    fake_api.nest(B, levels)
    result = workspace.cli("check")
    logs = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    done = next(e for e in logs if e["event"] == "cycle.done")
    assert (result.code, done["checked"], done["failed"]) == (1, 1, 1)
    failed = [e for e in logs if e["event"] == "trial.failed"]
    assert [e["nct_id"] for e in failed] == [B] and "nest" in failed[0]["error"]
    assert [r["nct_id"] for r in workspace.cli("list", "--json").json() if r["status"]] == [A]
