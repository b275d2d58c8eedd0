"""Saved searches against GET /studies: the parameters of one run, and its pages of 1,000.

A run after the first asks only for what can be new: studies first posted (`since: posted`) or
updated (`since: matching`) on or after the day of the last complete run, as an Essie range in
`filter.advanced` ANDed with the search's own. Days overlap by one so a study posted on the day of
the last run is not missed; the store's list of matches makes the overlap harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import structlog

from watcher.config.searches import Search
from watcher.detect.newstudies import SEARCH_FIELDS
from watcher.registry.client import MAX_PAGE_SIZE, CtGovClient

log = structlog.get_logger("watcher.registry.search")

AREAS = {"posted": "StudyFirstPostDate", "matching": "LastUpdatePostDate"}


def search_params(search: Search, since: date | None) -> dict[str, str]:
    """The query of one run: the search's own parameters, the date range (None: every match)."""
    params = search.params()
    if since is not None:
        window = f"AREA[{AREAS[search.since]}]RANGE[{since.isoformat()},MAX]"
        own = params.get("filter.advanced")
        params["filter.advanced"] = f"({own}) AND {window}" if own else window
    params.update({"fields": ",".join(SEARCH_FIELDS), "pageSize": str(MAX_PAGE_SIZE), "countTotal": "true"})
    return params


def run_search(client: CtGovClient, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every study the query matches, all pages; an unreadable study is skipped and logged."""
    studies: list[dict[str, Any]] = []
    for page in client.search_pages(params):
        for study in page["studies"]:
            if isinstance(study, dict) and isinstance(study.get("protocolSection"), dict):
                studies.append(study)
            else:
                log.warning("search.invalid_study", reason="no protocolSection")
    return studies
