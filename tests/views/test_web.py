"""The live web view through Starlette's test client: every page, its safety (read-only, GET only,
CSP, escaping, no secrets), its query checking (400 pages) and its JSON interface."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

pytest.importorskip("starlette", reason="the web view needs the [web] extra: pip install 'trialwatch[web]'")

from starlette.testclient import TestClient

from tests.support.web_store import HOSTILE_ID, TAGS, SeededSite, settings_file, store_versions, trial_versions
from watcher.config import load_config
from watcher.errors import StorageError
from watcher.store import Store
from watcher.store.connection import sqlite_path
from watcher.store.meta import SERVICE_PID
from watcher.views.chart import parse_day
from watcher.views.overview import DatesQuery, upcoming_dates
from watcher.web.api import openapi_document
from watcher.web.app import create_app

SECRET = "secret-token-123"


@pytest.fixture(scope="module")
def client(seeded_site: SeededSite) -> Iterator[TestClient]:
    with TestClient(create_app(seeded_site.config())) as test_client:
        yield test_client


def pages(site: SeededSite) -> list[str]:
    busiest = site.busiest
    return [
        "/",
        f"/?tag={TAGS[0]}",
        "/?q=NCT0&sort=date&page=1",
        f"/trials/{HOSTILE_ID}",
        f"/trials/{busiest}",
        f"/trials/{HOSTILE_ID}/compare?a=1&b=2",
        f"/trials/{HOSTILE_ID}/compare?a=1&b=2&view=side",
        "/changes?days=30",
        "/dates",
        "/searches",
        "/status",
    ]


def test_every_page_shows_the_hostile_title_as_text(client: TestClient, seeded_site: SeededSite) -> None:
    for path in pages(seeded_site):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["content-type"].startswith("text/html")
        assert "<script>alert" not in response.text and "<img src=x" not in response.text, path
        assert 'rel="alternate" type="application/atom+xml"' in response.text, path
    for path in ("/", f"/trials/{HOSTILE_ID}", f"/trials/{HOSTILE_ID}/compare?a=1&b=2"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(path).text, path


def test_every_response_carries_the_security_headers_and_no_outside_resource(client: TestClient) -> None:
    for path in ("/", "/changes", "/api/trials", "/nowhere", "/?days=x"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    page = client.get("/").text
    loaded = re.findall(r'<(?:link|script|img)[^>]+(?:href|src)="([^"]+)"', page)
    assert loaded and all(url.startswith("/") for url in loaded), loaded
    assert "<style" not in page and " style=" not in page and "<script>" not in page  # nothing inline: CSP allows none


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_anything_but_get_and_head_is_refused(client: TestClient, method: str) -> None:
    response = client.request(method, "/")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert client.request(method, "/api/trials").status_code == 405
    assert client.head("/").status_code == 200


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/?days=abc", "days"),
        ("/?days=0", "days"),
        ("/?sort=newest", "sort"),
        ("/?page=-1", "page"),
        ("/?source=mars", "source"),
        ("/?errors=maybe", "errors"),
        ("/?q=a&q=b", "q"),
        ("/changes?severity=huge", "severity"),
        ("/changes?days=1e9", "days"),
        (f"/trials/{HOSTILE_ID}/compare?a=99", "no version 99"),
        (f"/trials/{HOSTILE_ID}/compare?a=1&view=sideways", "view"),
        ("/api/trials?page=x", "page"),
        ("/dates?from=tomorrow", "from"),
        ("/dates?page=100000", "page"),
    ],
)
def test_a_malformed_parameter_gets_a_400_page_naming_it(client: TestClient, path: str, named: str) -> None:
    response = client.get(path)
    assert response.status_code == 400, path
    body = response.json()["error"] if path.startswith("/api/") else response.text
    assert named in body
    assert "Traceback" not in response.text


def test_upcoming_dates_come_a_page_at_a_time_soonest_first(client: TestClient, seeded_site: SeededSite) -> None:
    today = date(2015, 1, 1)  # before most of the corpus's dates: several pages of them
    with Store(seeded_site.db_url) as store:
        whole = upcoming_dates(store, DatesQuery(), today=today, per_page=9)
        paged = [upcoming_dates(store, DatesQuery(page=n), today=today, per_page=3) for n in (1, 2, 3)]
        later = upcoming_dates(store, DatesQuery(since=date(2026, 1, 1)), today=today, per_page=50)
    assert len(whole.dates) == 9 and whole.more
    assert [d for p in paged for d in p.dates] == whole.dates
    days = [parse_day(d.when) for d in whole.dates]
    assert days == sorted(days) and all(day is not None and day >= today for day in days)
    assert all((parse_day(d.when) or today) >= date(2026, 1, 1) for d in later.dates)
    page = client.get("/dates?from=2015-01-01").text
    assert 'rel="next"' in page and "/dates?from=2015-01-01&amp;page=2" in page
    assert 'rel="prev"' in client.get("/dates?from=2015-01-01&page=2").text


def test_unknown_trials_and_ids_are_404(client: TestClient) -> None:
    assert client.get("/trials/NCT00000001").status_code == 404
    assert client.get("/trials/not-an-id").status_code == 404
    assert client.get("/api/trials/NCT00000001/versions").json() == {"error": "nothing is stored for NCT00000001"}


def test_the_watch_list_filters_searches_sorts_and_pages(client: TestClient, seeded_site: SeededSite) -> None:
    everything = client.get("/api/trials").json()
    assert everything["total"] == len(seeded_site.trials)
    assert len(everything["trials"]) == min(50, len(seeded_site.trials))
    assert everything["pages"] == -(-len(seeded_site.trials) // 50)
    second = client.get("/api/trials?page=2").json()["trials"]
    assert not {t["nct_id"] for t in second} & {t["nct_id"] for t in everything["trials"]}
    tagged = client.get(f"/api/trials?tag={TAGS[0]}").json()["trials"]
    assert tagged and all(TAGS[0] in t["tags"] for t in tagged)
    assert HOSTILE_ID in {t["nct_id"] for t in tagged}
    sponsor = everything["trials"][0]["sponsor"]
    found = client.get("/api/trials", params={"q": sponsor.upper()}).json()["trials"]
    assert found and all(t["sponsor"] == sponsor or sponsor.lower() in (t["title"] or "").lower() for t in found)
    by_date = [t["primary_completion"] for t in client.get("/api/trials?sort=date").json()["trials"]]
    dated = [d for d in by_date if d]
    assert dated == sorted(dated) and by_date[: len(dated)] == dated
    assert client.get("/api/trials?source=registry").json()["total"] == 0  # every stored trial is listed
    recent = client.get("/api/trials?days=3").json()["trials"]
    assert recent and all(t["last_changed_at"] >= "2000" for t in recent)
    page = client.get(f"/?tag={TAGS[0]}").text
    assert f"<option selected>{TAGS[0]}</option>" in page


def test_the_trial_page_has_its_facts_changes_sites_timeline_and_chart(
    client: TestClient, seeded_site: SeededSite
) -> None:
    nct_id = seeded_site.busiest
    page = client.get(f"/trials/{nct_id}").text
    versions = client.get(f"/api/trials/{nct_id}/versions").json()
    assert len(versions) >= 3
    assert "<svg" in page and 'role="img"' in page and "Primary completion" in page
    assert page.count("<circle") >= len(versions)  # one mark per version and date at least
    assert f"https://clinicaltrials.gov/study/{nct_id}?tab=history" in page
    assert "Recent Field Changes (last 30 days)" in page and "<del>" in page and "<ins>" in page
    assert f"Versions ({len(versions)})" in page
    assert f'href="/trials/{nct_id}/compare?a={versions[-2]["version"]}&amp;b={versions[-1]["version"]}"' in page
    assert "Locations (" in page
    markdown = client.get(f"/trials/{nct_id}.md").text
    assert markdown.startswith("---\ntitle: ") and "## Recent Field Changes (last 30 days)" in markdown


def test_compare_inline_and_side_by_side(client: TestClient, seeded_site: SeededSite) -> None:
    nct_id = seeded_site.busiest
    inline = client.get(f"/trials/{nct_id}/compare?a=1&b=3").text
    assert "comparing" in inline and "<strong>v1</strong>" in inline and "<strong>v3</strong>" in inline
    assert '<ul class="changes">' in inline
    side = client.get(f"/trials/{nct_id}/compare?a=1&b=3&view=side").text
    assert '<table class="side">' in side and 'class="old"' in side and 'class="new"' in side
    default = client.get(f"/trials/{nct_id}/compare").text  # the newest two versions
    assert "field change" in default


def test_changes_export_csv_and_json(client: TestClient) -> None:
    rows = client.get("/changes.json?days=30").json()
    assert rows and {"nct_id", "version", "field", "old", "new", "severity"} <= set(rows[0])
    assert rows == sorted(rows, key=lambda r: r["detected_at"], reverse=True)
    csv_text = client.get("/changes.csv?days=30").text
    assert csv_text.splitlines()[0].startswith("nct_id,version,detected_at,field")
    assert len(list(csv.reader(io.StringIO(csv_text)))) == len(rows) + 1
    narrowed = client.get("/changes.json?days=30&field=status.*").json()
    assert narrowed and all(r["field"].startswith("status.") for r in narrowed)
    serious = client.get("/changes.json?days=30&severity=major").json()
    assert all(r["severity"] in ("major", "critical") for r in serious)


def test_status_names_failing_channels_never_their_url(client: TestClient, seeded_site: SeededSite) -> None:
    database = sqlite_path(seeded_site.db_url)
    assert database is not None
    with sqlite3.connect(database) as raw:  # a message the channel refused until it was parked
        raw.execute(
            "INSERT INTO outbox (channel, nct_id, kind, created_at, payload, status, attempts, last_error) "
            "VALUES ('team', ?, 'change', ?, '{}', 'parked', 20, ?)",
            (HOSTILE_ID, datetime.now(UTC).isoformat(), f"refused by json://hooks.example.org/{SECRET}"),
        )
    raw.close()
    page = client.get("/status").text
    assert "Failing: <strong>team</strong>" in page
    for path in ("/status", "/", f"/trials/{HOSTILE_ID}", "/changes", "/api/trials", "/openapi.json"):
        text = client.get(path).text
        assert SECRET not in text and "hooks.example.org" not in text, path


def test_api_answers_match_the_openapi_document(client: TestClient, seeded_site: SeededSite) -> None:
    document = client.get("/openapi.json").json()
    assert document == openapi_document("")
    nct_id = seeded_site.busiest
    for path, concrete in (
        ("/api/trials", "/api/trials?tag=oncology"),
        ("/api/trials/{nct_id}/versions", f"/api/trials/{nct_id}/versions"),
        ("/api/trials/{nct_id}/changes", f"/api/trials/{nct_id}/changes"),
        ("/api/changes", "/api/changes?days=30"),
        ("/api/trials/{nct_id}", f"/api/trials/{nct_id}"),
    ):
        response = client.get(concrete)
        assert response.status_code == 200, concrete
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.validate(response.json(), schema)


def test_feeds_are_served_and_linked(client: TestClient) -> None:
    feed = client.get("/feeds/all.atom")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
    assert "<feed" in feed.text and "&lt;script&gt;" not in feed.text.split("<entry>")[0]
    assert client.get(f"/feeds/{TAGS[0]}.atom").status_code == 200
    assert client.get("/feeds/no-such-tag.atom").status_code == 404
    assert f'href="/feeds/{TAGS[0]}.atom"' in client.get(f"/?tag={TAGS[0]}").text


def test_a_base_path_prefixes_every_link(seeded_site: SeededSite) -> None:
    with TestClient(create_app(seeded_site.config(), base_path="/watch/")) as prefixed:
        page = prefixed.get(f"/watch/?q={HOSTILE_ID}").text
        assert 'href="/watch/static/style.css"' in page and f'href="/watch/trials/{HOSTILE_ID}"' in page
        assert prefixed.get("/").status_code == 404


def test_the_view_reads_both_databases_and_writes_neither(db_url: str, tmp_path: Path) -> None:
    """SQLite opened `mode=ro`, PostgreSQL with `default_transaction_read_only`: the list works, a write fails."""
    nct_id, records = next(trial_versions())
    with Store(db_url) as store:
        store_versions(store, nct_id, records, start=datetime.now(UTC), step=timedelta(hours=1))
    settings = settings_file(tmp_path, db_url, [nct_id], tags={})
    with TestClient(create_app(load_config(settings))) as reader:
        assert reader.get("/api/trials").json()["total"] == 1
        assert reader.get(f"/trials/{nct_id}").status_code == 200
        with pytest.raises(StorageError):
            reader.app.state.site.store.meta.set(SERVICE_PID, 1)  # type: ignore[attr-defined]
