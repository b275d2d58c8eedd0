"""The HTML pages and feeds of the web view. Each route parses its query, asks `watcher.views`,
and renders a template; the query logic lives in the views."""

from __future__ import annotations

import json

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from watcher.ids import is_nct_id, normalize_nct_id
from watcher.models import SEVERITY_RANK
from watcher.views.changes import QueryError, change_row, diff_versions, resolve_version, to_csv
from watcher.views.feeds import feed_for
from watcher.views.html import static_text
from watcher.views.overview import (
    MAX_DATES_PAGE,
    changes_across,
    parse_changes_query,
    parse_dates_query,
    searches_view,
    upcoming_dates,
)
from watcher.views.trial_page import render_trial_page
from watcher.views.trial_view import change_view, ctgov_compare_url, rules_of, trial_view
from watcher.views.watch import list_page, one_of, parse_list_query
from watcher.web.app import site_of

STATIC = {"style.css": "text/css", "filter.js": "text/javascript"}


def params(request: Request) -> dict[str, str]:
    """The query string, each name once (a repeated name is refused: which one would count?)."""
    items = request.query_params.multi_items()
    names = [k for k, _ in items]
    repeated = sorted({k for k in names if names.count(k) > 1})
    if repeated:
        raise QueryError(f"{', '.join(repeated)}: given more than once")
    return dict(items)


def nct_of(request: Request) -> str:
    raw = str(request.path_params["nct_id"])
    if not is_nct_id(raw):
        raise HTTPException(404, f"{raw!r} is not an NCT ID (NCT followed by 8 digits)")
    return normalize_nct_id(raw)


def watch_list(request: Request) -> Response:
    site = site_of(request)
    query = parse_list_query(params(request))
    data = list_page(site.config, site.store, query, now=site.now())
    links = site.links
    return site.page(
        "list.html",
        query=query,
        page=data.page,
        pages=data.pages,
        first=data.first,
        last=data.last,
        trial_tags=data.trial_tags,
        tags=data.tags,
        statuses=data.statuses,
        previous=links.home(**query.as_params(page=query.page - 1)) if query.page > 1 else None,
        next=links.home(**query.as_params(page=query.page + 1)) if data.has_next else None,
    )


def trial(request: Request) -> Response:
    site = site_of(request)
    nct_id = nct_of(request)
    params(request)
    view = trial_view(site.config, site.store, nct_id, now=site.now())
    if view is None:
        raise HTTPException(404, f"nothing is stored for {nct_id} (is it watched, and has a cycle run?)")
    return site.page("trial.html", t=view, chart=Markup(view.chart), markdown=f"{site.links.trial(nct_id)}.md")


def trial_markdown(request: Request) -> Response:
    site = site_of(request)
    nct_id = nct_of(request)
    latest = site.store.versions.latest(nct_id)
    if latest is None:
        raise HTTPException(404, f"nothing is stored for {nct_id}")
    changes = [(c.detected_at, c.change) for c in site.store.changes.of(nct_id, include_baseline=False)]
    page = render_trial_page(latest.record, changes, days=30, today=site.now().date(), front_matter=True)
    return PlainTextResponse(page, media_type="text/markdown; charset=utf-8")


def compare(request: Request) -> Response:
    site = site_of(request)
    nct_id = nct_of(request)
    query = params(request)
    view = one_of(query, "view", ("inline", "side"), "inline")
    infos = site.store.versions.infos(nct_id)
    if not infos:
        raise HTTPException(404, f"nothing is stored for {nct_id}")
    now = site.now()
    old = resolve_version(infos, query.get("a") or None, default=max(len(infos) - 2, 0) - len(infos), now=now)
    new = resolve_version(infos, query.get("b") or None, default=-1, now=now)
    result = diff_versions(site.store, nct_id, old, new, rules_of(site.config))
    latest = site.store.versions.latest(nct_id)
    title = (latest.record.get("protocolSection") or {}) if latest else {}
    name = (title.get("identificationModule") or {}).get("briefTitle") or nct_id
    return site.page(
        "compare.html",
        nct_id=nct_id,
        title=name,
        old=old,
        new=new,
        versions=infos,
        view=view,
        changes=[change_view(c) for c in result.changes],
        ctgov=ctgov_compare_url(nct_id, old, new),
    )


def changes_page(request: Request) -> Response:
    site = site_of(request)
    query = parse_changes_query(params(request))
    found = changes_across(site.config, site.store, query, now=site.now())
    shown = found[:500]
    export = {"days": query.days, "severity": query.severity, "field": query.field, "tag": query.tag}
    return site.page(
        "changes.html",
        query=query,
        rows=[(item, change_view(item.change)) for item in shown],
        truncated=len(found) > len(shown),
        severities=list(SEVERITY_RANK),
        tags=sorted({t for trial in site.config.watchlist.trials for t in trial.tags}),
        export=export,
    )


def changes_export(request: Request) -> Response:
    site = site_of(request)
    query = parse_changes_query(params(request))
    rows = [change_row(item) for item in changes_across(site.config, site.store, query, now=site.now())]
    if request.url.path.endswith(".csv"):
        return Response(to_csv(rows), media_type="text/csv; charset=utf-8")
    return Response(json.dumps(rows, ensure_ascii=False, indent=1), media_type="application/json")


def dates(request: Request) -> Response:
    site = site_of(request)
    query = parse_dates_query(params(request))
    data = upcoming_dates(site.store, query, today=site.now().date())
    since = query.since.isoformat() if query.since else ""
    page = query.page
    return site.page(
        "dates.html",
        data=data,
        since=since,
        previous=site.links.page("dates", **{"from": since, "page": page - 1 if page > 2 else ""})
        if page > 1
        else None,
        next=site.links.page("dates", **{"from": since, "page": page + 1})
        if data.more and page < MAX_DATES_PAGE
        else None,
    )


def searches(request: Request) -> Response:
    site = site_of(request)
    params(request)
    return site.page("searches.html", searches=searches_view(site.config, site.store))


def status(request: Request) -> Response:
    from watcher.service.status import read_status, status_lines

    site = site_of(request)
    params(request)
    now = site.now()
    lines = status_lines(read_status(site.config, site.store, now=now), now=now)
    return site.page("status.html", lines=lines, failing=failing_channels(site.store.outbox.counts_by_channel()))


def failing_channels(counts: dict[str, dict[str, int]]) -> list[str]:
    """Channels holding parked messages (refused until given up), by name only: never their URL."""
    return sorted(name for name, by_status in counts.items() if by_status.get("parked"))


def feed(request: Request) -> Response:
    site = site_of(request)
    name = str(request.path_params["name"])
    tag = None if name == "all" else name
    known = {t for trial in site.config.watchlist.trials for t in trial.tags}
    if tag is not None and tag not in known:
        raise HTTPException(404, f"no watched trial is tagged {tag!r}")
    text = feed_for(site.config, site.store, now=site.now(), tag=tag)
    return Response(text, media_type="application/atom+xml; charset=utf-8")


def static(request: Request) -> Response:
    name = str(request.path_params["name"])
    if name not in STATIC:
        raise HTTPException(404, "no such file")
    headers = {"cache-control": "public, max-age=3600"}
    return Response(static_text(name), media_type=STATIC[name], headers=headers)


def page_routes() -> list[BaseRoute]:
    get = ["GET", "HEAD"]
    return [
        Route("/", watch_list, methods=get),
        Route("/trials/{nct_id}.md", trial_markdown, methods=get),
        Route("/trials/{nct_id}", trial, methods=get),
        Route("/trials/{nct_id}/compare", compare, methods=get),
        Route("/changes", changes_page, methods=get),
        Route("/changes.csv", changes_export, methods=get),
        Route("/changes.json", changes_export, methods=get),
        Route("/dates", dates, methods=get),
        Route("/searches", searches, methods=get),
        Route("/status", status, methods=get),
        Route("/feeds/{name}.atom", feed, methods=get),
        Route("/static/{name}", static, methods=get),
    ]
