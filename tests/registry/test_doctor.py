"""`trialwatch doctor`: its checks on recorded replies (real records and the live service's captured
shapes, published by people who probed it), and the command end to end against the fake over HTTP."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support import fakeapi
from tests.support.fake_history import as_history
from tests.support.fakeapi import FORBIDDEN_PAGE, HTML_PAGE, FakeCtGov
from tests.support.shared import load_studies, load_study
from tests.support.workspace import Workspace
from watcher.registry import doctor
from watcher.registry.client import PROBE_FIELDS
from watcher.registry.doctor_run import BATCH, _pad
from watcher.registry.responses import Reply
from watcher.registry.transport import USER_AGENT

BASE = "https://clinicaltrials.gov/api/v2"
INT = "https://clinicaltrials.gov/api/int"


def reply(
    body: Any,
    status: int = 200,
    *,
    url: str = f"{BASE}/studies",
    headers: dict[str, str] | None = None,
    agent: str = USER_AGENT,
) -> Reply:
    raw = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    return Reply(url, status, raw, headers or {"content-type": "application/json"}, agent)


def forbidden(url: str = f"{BASE}/version") -> Reply:
    """The edge's refusal (a live probe published in 2026-08; genomoncology/biomcp issue #87), as the fake words it."""
    return reply(FORBIDDEN_PAGE, 403, url=url, headers={"content-type": "text/html"})


def html_200(url: str = f"{BASE}/studies") -> Reply:
    return reply(HTML_PAGE, url=url, headers={"content-type": "text/html; charset=utf-8"})


def probe_view(study: dict[str, Any]) -> dict[str, Any]:
    """A real record as `fields=NCTId,NCTIdAlias,LastUpdatePostDate,OverallStatus` returns it."""
    ident, status = study["protocolSection"]["identificationModule"], study["protocolSection"]["statusModule"]
    out_ident = {key: ident[key] for key in ("nctId", "nctIdAliases") if key in ident}
    return {
        "protocolSection": {
            "identificationModule": out_ident,
            "statusModule": {
                "lastUpdatePostDateStruct": {"date": status["lastUpdatePostDateStruct"]["date"]},
                "overallStatus": status["overallStatus"],
            },
        }
    }


def real_page() -> list[dict[str, Any]]:
    return [probe_view(s) for s in load_studies()]


# -- /version and the User-Agent -------------------------------------------------------------------

LIVE_VERSION = {
    "apiVersion": "2.0.5",
    "dataTimestamp": "2026-09-04T09:00:06",
}  # a live GET /api/v2/version of 2026-09 (api-evangelist's lifecycle capture)


def test_user_agent_and_version_on_the_live_shape() -> None:
    good = reply(LIVE_VERSION, url=f"{BASE}/version")
    assert doctor.check_user_agent(good).ok
    assert doctor.check_version(good) == doctor.Check(
        "version", True, "apiVersion 2.0.5, dataTimestamp 2026-09-04T09:00:06 (the poll's gate)"
    )
    assert doctor.data_day(good).isoformat() == "2026-09-04"  # type: ignore[union-attr]


def test_a_403_fails_the_user_agent_and_says_why() -> None:
    check = doctor.check_user_agent(forbidden())
    assert not check.ok and "403 Forbidden" in check.evidence and "User-Agent" in check.evidence
    assert not doctor.check_version(forbidden()).ok
    bare = reply(LIVE_VERSION, url=f"{BASE}/version", agent="catalyst-research/0.1")  # 403 live (2026-08)
    assert not doctor.check_user_agent(bare).ok
    assert "names no HTTP library" in doctor.check_user_agent(bare).evidence


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (HTML_PAGE, "HTML page"),
        ({"apiVersion": "2.0.5"}, "dataTimestamp None"),
        ({"apiVersion": "2.0.5", "dataTimestamp": "04/09/2026"}, "yyyy-MM-ddTHH:mm:ss"),
        ('{"apiVersion": "2.0', "truncated"),
    ],
)
def test_version_shapes_the_gate_cannot_use(body: Any, words: str) -> None:
    check = doctor.check_version(reply(body, url=f"{BASE}/version"))
    assert not check.ok and words in check.evidence, check.evidence


# -- /studies: updated-since, the batch, paging ----------------------------------------------------


def test_updated_since_on_real_records() -> None:
    studies = real_page()
    day = min(s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] for s in studies)
    check = doctor.check_updated_since(reply({"studies": studies, "totalCount": len(studies)}), day)
    assert check.ok, check.evidence
    assert f"totalCount {len(studies)}, first page {len(studies)} studies" in check.evidence


@pytest.mark.parametrize("variant", ["older", "no total", "missing token", "html", "403", "all fields"])
def test_updated_since_failures(variant: str) -> None:
    studies = real_page()
    day = max(s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] for s in studies)
    newest = [s for s in studies if s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] == day]
    page: Any = {"studies": newest, "totalCount": len(newest)}
    if variant == "older":
        page = {"studies": studies, "totalCount": len(studies)}
    elif variant == "no total":
        del page["totalCount"]
    elif variant == "missing token":
        page["totalCount"] = 5000  # more than the page, and no nextPageToken to reach them
    elif variant == "all fields":
        page = {"studies": [load_study(newest[0]["protocolSection"]["identificationModule"]["nctId"])], "totalCount": 1}
    answer = html_200() if variant == "html" else forbidden(f"{BASE}/studies") if variant == "403" else reply(page)
    check = doctor.check_updated_since(answer, day)
    assert not check.ok, check.evidence
    expected = {
        "older": "dated before",
        "no total": "no totalCount",
        "missing token": "no nextPageToken",
        "html": "HTML page",
        "403": "403 Forbidden",
        "all fields": "fields beyond",
    }[variant]
    assert expected in check.evidence


def test_batch_of_400_on_real_records() -> None:
    studies = real_page()
    known = [s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
    asked = _pad(known, 400)
    assert len(asked) == 400 and asked[: len(known)] == known
    url = f"{BASE}/studies?filter.ids={'%2C'.join(asked)}&fields={'%2C'.join(PROBE_FIELDS)}&pageSize=1000"
    check = doctor.check_batch(reply({"studies": studies}, url=url), asked, known, PROBE_FIELDS)
    assert check.ok, check.evidence
    assert check.evidence.startswith("400 IDs in filter.ids (5,7")
    stranger = dict(
        studies[0], protocolSection={**studies[0]["protocolSection"], "identificationModule": {"nctId": "NCT99999998"}}
    )
    assert "not asked for" in doctor.check_batch(reply({"studies": [stranger]}), asked, known, PROBE_FIELDS).evidence
    whole = reply({"studies": load_studies()[:1]})
    assert "fields beyond" in doctor.check_batch(whole, asked, known, PROBE_FIELDS).evidence
    assert "none of the 17" in doctor.check_batch(reply({"studies": []}), asked, known, PROBE_FIELDS).evidence


def test_an_alias_answer_counts_as_asked() -> None:
    study = probe_view(load_study("NCT04280705"))
    study["protocolSection"]["identificationModule"]["nctIdAliases"] = ["NCT00009113"]
    assert doctor.check_batch(reply({"studies": [study]}), ["NCT00009113"], [], PROBE_FIELDS).ok


def paging_replies(*, first_token: bool = True, last_token: bool = True, tail: int = 0) -> list[Reply]:
    one, two = (probe_view(s) for s in load_studies(("NCT04280705", "NCT04728893")))
    pages: list[Reply] = [reply({"studies": [one], **({"nextPageToken": "t1"} if first_token else {})})]
    if first_token:
        pages.append(reply({"studies": [two], **({"nextPageToken": "t2"} if last_token else {})}))
        if last_token:
            pages.append(reply({"studies": [one] if tail else []}))
    return pages


def test_the_full_page_token_as_the_live_service_sends_it() -> None:
    check = doctor.check_paging(paging_replies(), ["NCT04280705", "NCT04728893"])
    assert check.ok, check.evidence


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"first_token": False}, "page 1 of 2 studies asked with pageSize=1 carries no nextPageToken"),
        ({"last_token": False}, "page 2 was exactly full (the last study) and carried no nextPageToken"),
        ({"tail": 1}, "each study once"),
    ],
)
def test_paging_failures(kwargs: dict[str, Any], words: str) -> None:
    check = doctor.check_paging(paging_replies(**kwargs), ["NCT04280705", "NCT04728893"])
    assert not check.ok and words in check.evidence, check.evidence


# -- single studies: 301, 404 ------------------------------------------------------------------------


def test_alias_301_as_captured_live() -> None:
    """The live service (dev.to, "Look Up a Study by NCT Number", 2026-10-14): NCT00009113 → 301 → NCT00010647."""
    canonical = {"protocolSection": {"identificationModule": {"nctId": "NCT00010647", "nctIdAliases": ["NCT00009113"]}}}
    moved = reply(b"", 301, url=f"{BASE}/studies/NCT00009113", headers={"location": "/api/v2/studies/NCT00010647"})
    check = doctor.check_alias(moved, reply(canonical, url=f"{BASE}/studies/NCT00010647"), "NCT00009113")
    assert check.ok, check.evidence
    assert not doctor.check_alias(reply(canonical, url=f"{BASE}/studies/NCT00009113"), None, "NCT00009113").ok
    elsewhere = reply(
        b"",
        301,
        url=f"{BASE}/studies/NCT00009113",
        headers={"location": "https://example.org/api/v2/studies/NCT00010647"},
    )
    assert "not a study on the same host" in doctor.check_alias(elsewhere, None, "NCT00009113").evidence
    gone = reply(b"NCT number NCT00009113 not found", 404, url=f"{BASE}/studies/NCT00009113")
    assert "--alias" in doctor.check_alias(gone, None, "NCT00009113").evidence


def test_404_body_as_captured_live() -> None:
    """The live service (dev.to, 2026-10-14): `NCT number NCT99999999 not found`, text/plain."""
    found = reply(
        b"NCT number NCT99999999 not found",
        404,
        url=f"{BASE}/studies/NCT99999999",
        headers={"content-type": "text/plain"},
    )
    check = doctor.check_not_found(found, "NCT99999999")
    assert check.ok and "404 text/plain 'NCT number NCT99999999 not found'" in check.evidence
    assert not doctor.check_not_found(html_200(f"{BASE}/studies/NCT99999999"), "NCT99999999").ok


# -- record history ----------------------------------------------------------------------------------


def history_index(study: dict[str, Any], versions: int = 3) -> dict[str, Any]:
    """The 2026 entry shape (pharma_stats' guard and a 53-version capture of NCT04368728), over a real record."""
    nct = study["protocolSection"]["identificationModule"]["nctId"]
    changes = [
        {
            "version": v,
            "date": f"2024-0{v + 1}-15",
            "status": "RECRUITING",
            "studyType": "INTERVENTIONAL",
            "moduleLabels": [],
            "lastUpdateSubmitQcDate": f"2024-0{v + 1}-15",
        }
        for v in range(versions)
    ]
    assert nct
    return {
        "study": as_history(study),
        "topics": {},
        "history": {"changes": changes, "originalData": {}, "lastUpdateVersions": {}, "outcomesUpdateCount": 0},
    }


def test_history_shape_and_markup_on_a_real_record() -> None:
    study = load_study("NCT04207047")
    index, entries = doctor.check_history_index(reply(history_index(study)), "NCT04207047")
    assert index.ok and "3 versions numbered 0–2" in index.evidence
    assert [e.version for e in entries] == [0, 1, 2]
    version, past = doctor.check_history_version(
        reply({"studyVersion": 2, "study": as_history(study)}), "NCT04207047", 2
    )
    assert version.ok and past is not None
    markup = doctor.check_history_markup(past, reply(study), "NCT04207047")
    assert markup.ok, markup.evidence
    assert "eligibilityCriteria" in markup.evidence


def test_history_failures() -> None:
    study = load_study("NCT04207047")
    refused = doctor.check_history_index(forbidden(f"{INT}/studies/NCT04207047?history=true"), "NCT04207047")
    assert not refused[0].ok and "403" in refused[0].evidence and refused[1] == []
    assert "HTML page" in doctor.check_history_index(html_200(), "NCT04207047")[0].evidence
    gap = history_index(study)
    gap["history"]["changes"][1]["version"] = 5
    assert "numbered 0, 1, 2" in doctor.check_history_index(reply(gap), "NCT04207047")[0].evidence
    wrong = doctor.check_history_version(reply({"studyVersion": 1, "study": study}), "NCT04207047", 2)
    assert not wrong[0].ok and "got studyVersion 1" in wrong[0].evidence

    markdown = doctor.check_history_markup(study, reply(study), "NCT04207047")
    assert not markdown.ok and "served as markdown, not HTML" in markdown.evidence
    edited = as_history(study)
    edited["protocolSection"]["descriptionModule"]["briefSummary"] += "<p>HbA1c &lt; 7.0%</p>"
    changed = doctor.check_history_markup(edited, reply(study), "NCT04207047")
    assert not changed.ok and "briefSummary reads differently" in changed.evidence


# -- end to end: `trialwatch doctor` against the fake over HTTP ------------------------------------


def lines_of(out: str) -> dict[str, str]:
    """Check name → ok/FAILED, from the command's output."""
    result = {}
    for line in out.splitlines():
        if line.startswith(("ok ", "FAILED ")):
            status, rest = line.split(" ", 1)
            name = rest.strip()[:16].strip()
            result[name] = status
    return result


@pytest.fixture
def doctor_fake(fake_api: FakeCtGov, workspace: Workspace) -> FakeCtGov:
    fake_api.alias("NCT00009113", "NCT04280705", bump=False)  # the live service's documented alias
    fake_api.check_user_agent = True  # like the live edge
    workspace.write(trials=["NCT04728893", "NCT03418623"])
    return fake_api


def test_doctor_passes_against_the_fake(workspace: Workspace, doctor_fake: FakeCtGov) -> None:
    result = workspace.cli("doctor")
    assert result.code == 0, result.out + result.err
    assert lines_of(result.out) == dict.fromkeys(
        [
            "user-agent",
            "version",
            "updated-since",
            "filter.ids batch",
            "full-page token",
            "alias 301",
            "404 body",
            "history index",
            "history version",
            "history markup",
        ],
        "ok",
    )
    assert result.out.rstrip().endswith("all ok")
    batch = [
        p
        for _, path, p in doctor_fake.requests
        if path.endswith("/studies") and "filter.ids" in p and p["filter.ids"].count(",") == BATCH - 1
    ]  # api.batch_size (480)
    assert batch and batch[0]["fields"] == ",".join(PROBE_FIELDS)


def test_doctor_fails_when_the_edge_refuses_the_user_agent(
    workspace: Workspace, doctor_fake: FakeCtGov, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fakeapi, "HTTP_LIBRARY", re.compile(r"^curl/"))  # an edge that wants curl only
    result = workspace.cli("doctor")
    assert result.code == 1
    lines = lines_of(result.out)
    assert lines["user-agent"] == "FAILED"
    assert "403 Forbidden" in next(line for line in result.out.splitlines() if "user-agent" in line)
    assert set(lines.values()) == {"FAILED"}


@pytest.mark.parametrize(
    ("fault", "failed"),
    [
        ("html-updated-since", "updated-since"),
        ("markdown-history", "history markup"),
        ("403-history", "history index"),
    ],
)
def test_doctor_names_the_check_a_fault_breaks(
    workspace: Workspace, doctor_fake: FakeCtGov, fault: str, failed: str
) -> None:
    if fault == "html-updated-since":
        doctor_fake.fail("html", path_contains="filter.advanced")
    elif fault == "markdown-history":
        doctor_fake.history_html = False
    else:
        doctor_fake.fail("403", path_contains="history=true")
    result = workspace.cli("doctor")
    assert result.code == 1
    lines = lines_of(result.out)
    assert lines[failed] == "FAILED"
    dependent = {"history index": {"history version", "history markup"}}.get(failed, set())
    assert {name for name, status in lines.items() if status == "FAILED"} == {failed, *dependent}
