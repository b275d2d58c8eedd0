"""The web view in a real browser, as a person uses it: Playwright for Python drives Debian's
chromium (`apt-get install -y chromium`) against `trialwatch serve` started as a real process.

Skipped, saying why, when Playwright or chromium is missing (`playwright install` cannot download
browsers on our machines: the system's chromium is used)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.web_store import HOSTILE_ID, TAGS, SeededSite

pytest.importorskip("playwright", reason="the browser tests need Playwright: pip install 'trialwatch[test]'")
pytest.importorskip("starlette", reason="the web view needs the [web] extra: pip install 'trialwatch[web]'")

from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None) or (
    shutil.which("chromium")
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install -y chromium (Debian's browser)"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, web_server: str) -> Iterator[Page]:
    """A fresh page; any dialog (an alert a script opened) is recorded and fails the test."""
    context = browser.new_context(base_url=web_server)
    opened = context.new_page()
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", record)
    errors: list[str] = []
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield opened
    context.close()
    assert dialogs == [], f"a script ran: {dialogs}"
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_open_the_list_and_filter_by_tag_and_text(page: Page, seeded_site: SeededSite, web_server: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Watch list")).to_be_visible()
    rows = page.locator("table.trials tbody tr")
    expect(rows).to_have_count(min(50, len(seeded_site.trials)))
    page.get_by_label("Tag").select_option(TAGS[1])
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{web_server}/?q=&tag={TAGS[1]}&status=&source=&days=&sort=changed")
    expect(rows).to_have_count(5)
    page.get_by_role("searchbox", name="Search").fill(HOSTILE_ID)
    page.get_by_label("Tag").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("<script>alert(1)</script>")  # shown as text, not run


def test_open_a_trial_see_the_chart_and_compare_two_versions(
    page: Page, seeded_site: SeededSite, web_server: str
) -> None:
    nct_id = seeded_site.busiest
    page.goto(f"/?q={nct_id}")
    page.get_by_role("link", name=nct_id).click()
    expect(page).to_have_url(f"{web_server}/trials/{nct_id}")
    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    assert chart.bounding_box() is not None and chart.bounding_box()["height"] > 100  # type: ignore[index]
    expect(chart.locator("circle").first).to_be_attached()
    expect(page.get_by_role("link", name="ClinicalTrials.gov history")).to_have_attribute(
        "href", f"https://clinicaltrials.gov/study/{nct_id}?tab=history"
    )
    page.locator("ol.timeline a").first.click()
    expect(page.get_by_text("comparing")).to_be_visible()
    page.get_by_label("From").select_option("1")
    page.get_by_label("View").select_option("side")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("table.side")).to_be_visible()
    expect(page.locator("table.side tbody tr").first).to_be_visible()


def test_follow_the_feed_link(page: Page) -> None:
    page.goto("/")
    href = page.locator('link[rel="alternate"][type="application/atom+xml"]').first.get_attribute("href")
    assert href == "/feeds/all.atom"
    response = page.request.get(href)
    assert response.ok and "<feed" in response.text()
    with page.expect_response(lambda r: r.url.endswith("/feeds/all.atom")) as answer:
        page.get_by_role("link", name="Atom feed").click()
    assert answer.value.status == 200


def test_keyboard_navigation_reaches_and_opens_a_trial(page: Page, web_server: str) -> None:
    page.goto(f"/?q={HOSTILE_ID}")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    link = page.locator(f'a[href="/trials/{HOSTILE_ID}"]')
    for _ in range(40):
        page.keyboard.press("Tab")
        if link.evaluate("element => element === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the trial's link")
    page.keyboard.press("Enter")
    # The expected URL is built from the server's address, never from page.url: read after Enter, that may
    # already be the trial's page (a race that failed CI once).
    expect(page).to_have_url(f"{web_server}/trials/{HOSTILE_ID}")
    expect(page.get_by_role("heading", level=1)).to_have_text("<script>alert(1)</script><img src=x onerror=alert(2)>")


def test_the_hostile_title_never_runs_anywhere(page: Page) -> None:
    for path in ("/", f"/trials/{HOSTILE_ID}", f"/trials/{HOSTILE_ID}/compare?a=1&b=2", "/changes?days=30", "/dates"):
        page.goto(path)
        expect(page.locator("main")).to_be_visible()
        assert page.evaluate("() => document.querySelectorAll('main script, main img[src=x]').length") == 0, path


def test_the_static_site_index_filters_in_the_page(browser: Browser, seeded_site: SeededSite, tmp_path: Path) -> None:
    from watcher.store import Store
    from watcher.views.site import build_site

    with Store(seeded_site.db_url) as store:
        build_site(seeded_site.config(), store, tmp_path, now=seeded_site.now)
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto((tmp_path / "index.html").as_uri())
    rows = page.locator("#trials tbody tr:visible")
    expect(rows).to_have_count(len(seeded_site.trials))
    page.get_by_label("Filter").fill("script")
    expect(rows).to_have_count(1)
    expect(page.locator("#count")).to_have_text("1 trials")
    rows.first.get_by_role("link", name=HOSTILE_ID).click()
    expect(page.locator("svg.chart")).to_be_visible()
    context.close()
    assert dialogs == []
