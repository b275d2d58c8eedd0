"""Markdown (API v2) against HTML (record history): the same text compares equal, a real edit does not,
and backfill over HTTP from HTML history stores exactly the real versions."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import real_pairs
from tests.support.fake_history import as_history, markup_values, render_html
from tests.support.fakeapi import FakeCtGov
from tests.support.history_replay import replay, versions_of
from tests.support.shared import find
from tests.support.workspace import Workspace
from watcher.registry.markup import as_markdown, html_text, markdown_text, same_text
from watcher.registry.record_history import adopt_markup
from watcher.store import Store


@cache
def real_texts() -> tuple[str, ...]:
    """Every markup text of every real record (studies/ and pairs/), once each."""
    paths = sorted(find("studies").glob("*.json")) + sorted(real_pairs.pairs_dir().glob("NCT*/*.json"))
    texts = {text for path in paths for _, text in markup_values(json.loads(path.read_text(encoding="utf-8")))}
    return tuple(sorted(texts))


@pytest.mark.parametrize("line_breaks", [True, False], ids=["2025-html", "older-html"])
def test_every_real_markup_text_reads_the_same_as_the_html_the_history_serves(line_breaks: bool) -> None:
    texts = real_texts()
    assert len(texts) > 1000
    differing = [t for t in texts if not same_text(t, render_html(t, line_breaks=line_breaks))]
    assert differing == []
    as_strings = sum(1 for t in texts if render_html(t, line_breaks=line_breaks) != t)
    assert as_strings > 0.9 * len(texts), "nearly every text differs as a string: the test is not vacuous"


def test_an_ordered_list_and_entities_are_markup_not_edits() -> None:
    markdown = "Inclusion Criteria:\n\n1. Male or female, age 18 years and older.\n2. Subject's A/B good health."
    html = (
        "<p>Inclusion Criteria:</p>\n<ol>\n<li>Male or female, age 18 years and older.</li>\n"
        "<li>Subject&#x27;s A&#x2F;B good health.</li>\n</ol>"
    )
    assert same_text(markdown, html)
    assert not same_text(markdown, html.replace("18 years", "21 years"))
    assert not same_text(markdown, html.replace("Male", "male")), "case is text, not markup"
    assert same_text(
        "See [the site](https://example.org/a)",
        '<p>See <a href="https:&#x2F;&#x2F;example.org&#x2F;a">the site</a></p>',
    )
    other_target = '<p>See <a href="https://example.org/b">the site</a></p>'
    assert not same_text("See [the site](https://example.org/a)", other_target)


@pytest.mark.parametrize(
    "sentence", ["HbA1c < 7.0% and BMI > 30", "AT&T & Johnson & Johnson", "creatinine <1.5 mg/dL and ALT >3 x ULN"]
)
def test_lt_gt_and_amp_in_real_text_survive(sentence: str) -> None:
    base = real_texts()[0]
    markdown = f"{base}\n\n{sentence}"
    html = render_html(markdown)
    assert sentence in html_text(html)
    assert sentence in markdown_text(markdown)
    assert same_text(markdown, html)
    assert not same_text(base, html), "the sentence is a real edit"
    for entity in ("&lt;", "&gt;", "&amp;"):
        if entity in html:
            assert not same_text(markdown, html.replace(entity, "", 1)), f"dropping one {entity} is an edit"
    assert as_markdown(None, render_html(sentence)) == sentence, "an edited history text keeps them too"
    assert as_markdown(base, html).split("\n")[-1] == sentence


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_real_edit_of_a_real_text_still_compares_different(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(real_texts()))
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if not letters:
        return
    at = data.draw(st.sampled_from(letters))
    edit = data.draw(st.sampled_from(["insert", "delete", "case"]))
    if edit == "insert":
        edited = text[:at] + data.draw(st.sampled_from("xQé")) + text[at:]
    elif edit == "delete":
        edited = text[:at] + text[at + 1 :]
    else:
        edited = text[:at] + text[at].swapcase() + text[at + 1 :]
    if edited == text:
        return
    assert not same_text(text, render_html(edited)), (edit, at)
    assert same_text(edited, render_html(edited))


def test_a_really_edited_html_text_comes_back_as_markdown_on_the_newer_lines() -> None:
    newer = next(t for t in real_texts() if t.count("\n* ") > 10)
    lines = newer.split("\n")
    bullet = next(i for i, line in enumerate(lines) if line.startswith("* ") and len(line) > 20)
    older = "\n".join([*lines[:bullet], lines[bullet].replace(" ", "  ", 1) + " (amended)", *lines[bullet + 1 :]])
    back = as_markdown(newer, render_html(older))
    assert back.split("\n")[:bullet] == lines[:bullet]
    assert back.split("\n")[bullet].endswith("(amended)")
    assert back.split("\n")[bullet + 1 :] == lines[bullet + 1 :]


def test_adopting_markup_walks_lists_whose_length_changed() -> None:
    stored = {"arms": [{"label": "A", "description": "Gets **drug**."}, {"label": "B", "description": "Observation"}]}
    past = {"arms": [{"label": "B", "description": "<p>Observation</p>"}]}
    assert adopt_markup(stored, past) == {"arms": [{"label": "B", "description": "Observation"}]}


def test_the_fake_history_serves_html_for_markup_fields(fake_api: FakeCtGov) -> None:
    import httpx

    body = httpx.get(fake_api.base_url.replace("/v2", "/int") + "/studies/NCT04207047/history/0").json()
    criteria = body["study"]["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    assert criteria.startswith("<p>Inclusion Criteria:</p>\n<ol>\n<li>")
    assert "&#x2F;" in criteria
    assert as_history(fake_api.get("NCT04207047")) == body["study"]


# -- end to end: real successive versions, HTML history, backfill over HTTP ------------------------

REPLAYED = ["NCT07011550", "NCT04514484", "NCT06657144", "NCT06203210", "NCT07227597", "NCT05414032"]


@pytest.mark.parametrize("nct_id", REPLAYED)
def test_backfill_of_real_versions_served_as_html_history_has_no_false_edits(nct_id: str, tmp_path: Path) -> None:
    result = replay(nct_id, tmp_path)
    assert result.html_texts > 0, "the history really served HTML"
    assert result.imported == result.versions - 1
    assert result.false_edits == ()
    assert result.missed == ()
    assert result.inexact == (), "real edits are stored with the real versions' values"
    assert result.posted_dates_right, "each version is dated by its own lastUpdatePostDate, not the QC date"


def test_backfill_over_html_history_without_line_breaks(tmp_path: Path) -> None:
    result = replay("NCT07011550", tmp_path, line_breaks=False)
    assert (result.false_edits, result.missed, result.inexact) == ((), (), ())


def test_the_held_version_is_found_by_content_not_as_the_last_of_its_day(workspace: Workspace) -> None:
    """Two versions share a QC date; TrialWatch holds the earlier. Taking the day's last as its own
    version (the old rule) would import the held version again as its own predecessor."""
    nct = "NCT07011550"
    first, second, *_ = versions_of(nct)

    def amended(study: dict[str, Any]) -> dict[str, Any]:
        copy = json.loads(json.dumps(study))
        copy["protocolSection"]["designModule"]["enrollmentInfo"]["count"] += 7
        return copy

    with FakeCtGov([first, second]) as fake:
        workspace.api_url = fake.base_url
        workspace.write(trials=[nct])
        assert workspace.cli("check").code == 0
        fake.put(amended(second))  # same QC date as the held version, posted after our poll
        result = workspace.cli("backfill", nct)
    assert result.code == 0, result.err
    assert result.out.startswith(f"{nct}: imported 1 past version of 3"), result.out
    with Store(workspace.db_url) as store:
        infos = store.versions.infos(nct)
        assert [i.ctgov_version for i in infos] == [0, 1]
        assert [i.fetched_at.date().isoformat() for i in infos][:1] == ["2025-08-27"], "posted, not QC'd"
