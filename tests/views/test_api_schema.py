"""The JSON interface against its own description: schemathesis generates requests from
`/openapi.json` (valid and invalid parameters) and checks every answer: no server error, a status
code and content type the document lists, a body its schema accepts."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web view needs the [web] extra: pip install 'trialwatch[web]'")
schemathesis = pytest.importorskip("schemathesis", reason="the API's schema tests need schemathesis (test extra)")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.support.web_store import SeededSite  # noqa: E402
from watcher.web.app import create_app  # noqa: E402

OPERATIONS = [
    "/api/trials",
    "/api/trials/{nct_id}",
    "/api/trials/{nct_id}/versions",
    "/api/trials/{nct_id}/changes",
    "/api/changes",
]


@pytest.mark.parametrize("path", OPERATIONS)
def test_every_answer_matches_the_openapi_document(seeded_site: SeededSite, path: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(seeded_site.config()))
    operation = schema[path]["GET"]

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answers_as_described(case: Any) -> None:
        case.call_and_validate()

    answers_as_described()
