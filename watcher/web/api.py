"""The JSON interface (`/api/…`) and its description (`/openapi.json`, OpenAPI 3.1, written here by
hand beside the routes it describes so the two change together).

The same queries as the pages: `/api/trials` takes the watch list's parameters, `/api/changes` the
changes page's; a malformed parameter is a 400 with `{"error": …}`.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from watcher import __version__
from watcher.store.browse import TrialRowView
from watcher.store.values import VersionInfo
from watcher.views.changes import change_row
from watcher.views.overview import changes_across, parse_changes_query
from watcher.views.watch import list_page, parse_list_query
from watcher.web.app import site_of
from watcher.web.routes import nct_of, params


def _stamp(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def trial_json(row: TrialRowView, tags: tuple[str, ...]) -> dict[str, Any]:
    return {
        "nct_id": row.nct_id,
        "title": row.title,
        "overall_status": row.overall_status,
        "sponsor": row.sponsor,
        "conditions": row.conditions,
        "primary_completion": row.primary_completion,
        "last_changed_at": _stamp(row.last_changed_at),
        "last_checked_at": _stamp(row.last_checked_at),
        "consecutive_failures": row.consecutive_failures,
        "versions": row.versions,
        "tags": list(tags),
    }


def version_json(info: VersionInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        "fetched_at": info.fetched_at.isoformat(),
        "last_update_post_date": info.last_update_post_date,
        "source": info.source,
        "ctgov_version": info.ctgov_version,
        "pruned": info.pruned,
    }


def trials(request: Request) -> Response:
    site = site_of(request)
    query = parse_list_query(params(request))
    data = list_page(site.config, site.store, query, now=site.now())
    rows = [trial_json(r, data.trial_tags.get(r.nct_id, ())) for r in data.page.rows]
    more = data.page.capped  # past the count's cap: total and pages are lower bounds
    body = {"total": data.page.total, "page": query.page, "pages": data.pages, "more": more, "trials": rows}
    return JSONResponse(body)


def one_trial(request: Request) -> Response:
    site = site_of(request)
    nct_id = nct_of(request)
    params(request)
    latest = site.store.versions.latest(nct_id)
    if latest is None:
        raise HTTPException(404, f"nothing is stored for {nct_id}")
    return JSONResponse({"nct_id": nct_id, "version": latest.version, "record": latest.record})


def versions(request: Request) -> Response:
    site = site_of(request)
    nct_id = nct_of(request)
    params(request)
    infos = site.store.versions.infos(nct_id)
    if not infos:
        raise HTTPException(404, f"nothing is stored for {nct_id}")
    return JSONResponse([version_json(i) for i in infos])


def trial_changes(request: Request) -> Response:
    site = site_of(request)
    nct_id = nct_of(request)
    params(request)
    items = site.store.changes.of(nct_id, include_baseline=False)
    return JSONResponse([change_row(i) for i in items])


def changes(request: Request) -> Response:
    site = site_of(request)
    query = parse_changes_query(params(request))
    return JSONResponse([change_row(i) for i in changes_across(site.config, site.store, query, now=site.now())])


def openapi(request: Request) -> Response:
    params(request)
    return JSONResponse(openapi_document(str(request.scope.get("root_path", ""))))


def api_routes() -> list[BaseRoute]:
    get = ["GET", "HEAD"]
    return [
        Route("/api/trials", trials, methods=get),
        Route("/api/trials/{nct_id}", one_trial, methods=get),
        Route("/api/trials/{nct_id}/versions", versions, methods=get),
        Route("/api/trials/{nct_id}/changes", trial_changes, methods=get),
        Route("/api/changes", changes, methods=get),
        Route("/openapi.json", openapi, methods=get),
    ]


# -- the description ------------------------------------------------------------------------------

_TEXT = {"type": "string"}
_OPT_TEXT = {"type": ["string", "null"]}
_NCT = {"name": "nct_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^NCT\\d{8}$"}}
_ERROR = {"type": "object", "properties": {"error": _TEXT}, "required": ["error"]}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


LIST_PARAMS = [
    _query("q", {"type": "string", "maxLength": 200}, "text in the NCT ID, title, conditions or sponsor"),
    _query("tag", {"type": "string", "maxLength": 100}, "a watchlist tag"),
    _query("status", {"type": "string", "maxLength": 40}, "an overall status, e.g. RECRUITING"),
    _query("source", {"type": "string", "enum": ["listed", "search", "registry"]}, "how the trial is watched"),
    _query("errors", {"type": "string", "enum": ["", "0", "1"]}, "1: only trials whose last checks failed"),
    _query("days", {"type": "integer", "minimum": 1, "maximum": 3650}, "changed in the last N days"),
    _query("sort", {"type": "string", "enum": ["changed", "date", "id", "title"]}, "order of the list"),
    _query("page", {"type": "integer", "minimum": 1, "maximum": 1000000}, "page of 50 trials"),
]
CHANGE_PARAMS = [
    _query("days", {"type": "integer", "minimum": 1, "maximum": 3650}, "how far back (default 7)"),
    _query("severity", {"type": "string", "enum": ["minor", "major", "critical"]}, "at least this severe"),
    _query("field", {"type": "string", "maxLength": 200}, "a field name or glob, e.g. status.*"),
    _query("tag", {"type": "string", "maxLength": 100}, "only trials with this tag"),
]
CHANGE = {
    "type": "object",
    "required": ["nct_id", "version", "detected_at", "field", "change", "severity"],
    "properties": {
        "nct_id": _TEXT,
        "version": {"type": "integer"},
        "detected_at": {"type": "string", "format": "date-time"},
        "field": _TEXT,
        "change": {"type": "string", "enum": ["added", "removed", "changed"]},
        "old": {},
        "new": {},
        "severity": _TEXT,
        "baseline": {"type": "boolean"},
    },
}
TRIAL = {
    "type": "object",
    "required": ["nct_id", "versions", "tags"],
    "properties": {
        "nct_id": _TEXT,
        "title": _OPT_TEXT,
        "overall_status": _OPT_TEXT,
        "sponsor": _OPT_TEXT,
        "conditions": _OPT_TEXT,
        "primary_completion": _OPT_TEXT,
        "last_changed_at": _OPT_TEXT,
        "last_checked_at": _OPT_TEXT,
        "consecutive_failures": {"type": "integer"},
        "versions": {"type": "integer"},
        "tags": {"type": "array", "items": _TEXT},
    },
}
VERSION = {
    "type": "object",
    "required": ["version", "fetched_at", "source", "pruned"],
    "properties": {
        "version": {"type": "integer"},
        "fetched_at": {"type": "string", "format": "date-time"},
        "last_update_post_date": _OPT_TEXT,
        "source": _TEXT,
        "ctgov_version": {"type": ["integer", "null"]},
        "pruned": {"type": "boolean"},
    },
}


def _answer(schema: dict[str, Any], *, not_found: bool = False) -> dict[str, Any]:
    json_of = {"application/json": {"schema": schema}}
    answers: dict[str, Any] = {
        "200": {"description": "OK", "content": json_of},
        "400": {"description": "a malformed parameter", "content": {"application/json": {"schema": _ERROR}}},
    }
    if not_found:
        answers["404"] = {"description": "nothing stored", "content": {"application/json": {"schema": _ERROR}}}
    return answers


def openapi_document(root: str = "") -> dict[str, Any]:
    page = {
        "type": "object",
        "required": ["total", "page", "pages", "more", "trials"],
        "properties": {
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "pages": {"type": "integer"},
            "more": {
                "type": "boolean",
                "description": "more than 10,000 trials match: total and pages are lower bounds",
            },
            "trials": {"type": "array", "items": TRIAL},
        },
    }
    record = {"type": "object", "properties": {"nct_id": _TEXT, "version": {"type": "integer"}, "record": {}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "TrialWatch read-only API", "version": __version__},
        "servers": [{"url": root or "/"}],
        "paths": {
            "/api/trials": {
                "get": {"summary": "the watch list", "parameters": LIST_PARAMS, "responses": _answer(page)}
            },
            "/api/trials/{nct_id}": {
                "get": {
                    "summary": "a trial's newest record",
                    "parameters": [_NCT],
                    "responses": _answer(record, not_found=True),
                }
            },
            "/api/trials/{nct_id}/versions": {
                "get": {
                    "summary": "a trial's stored versions",
                    "parameters": [_NCT],
                    "responses": _answer({"type": "array", "items": VERSION}, not_found=True),
                }
            },
            "/api/trials/{nct_id}/changes": {
                "get": {
                    "summary": "a trial's field changes, oldest first",
                    "parameters": [_NCT],
                    "responses": _answer({"type": "array", "items": CHANGE}, not_found=True),
                }
            },
            "/api/changes": {
                "get": {
                    "summary": "changes across trials, newest first",
                    "parameters": CHANGE_PARAMS,
                    "responses": _answer({"type": "array", "items": CHANGE}),
                }
            },
        },
    }
