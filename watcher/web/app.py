"""The web view's application: the store opened read-only, the routes, the error pages.

`create_app(config)` is what `trialwatch serve` hands to uvicorn. The store is opened read-only
(SQLite `mode=ro`, PostgreSQL `default_transaction_read_only`), so the view runs beside the
service on the same database and cannot change it. A malformed query parameter is a 400 page
naming it; an unknown trial a 404; a bug a 500 page without a traceback (the log has it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount

from watcher.config import Config
from watcher.store import Store
from watcher.views.changes import QueryError
from watcher.views.html import Links, render
from watcher.web.security import ReadOnlyHeaders

log = structlog.get_logger("watcher.web")


class Site:
    """What every route needs: the settings, the read-only store, the clock and the links."""

    def __init__(self, config: Config, store: Store, links: Links, now: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.links = links
        self.now = now

    def page(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(render(template, links=self.links, **context), status_code=status_code)


def site_of(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


def normal_base(base_path: str) -> str:
    """`/`, `/view`, `view/` → ``, `/view`, `/view`: the prefix every URL starts with."""
    stripped = base_path.strip().strip("/")
    if any(c in stripped for c in "?#\\ ") or ".." in stripped.split("/"):
        raise ValueError(f"--base-path {base_path!r}: expected a URL path such as /trials")
    return f"/{stripped}" if stripped else ""


def create_app(
    config: Config, *, base_path: str = "/", now: Callable[[], datetime] | None = None, store: Store | None = None
) -> Starlette:
    """The ASGI application. `store` (tests) replaces the read-only store opened from the settings."""
    from watcher.web.api import api_routes
    from watcher.web.routes import page_routes

    base = normal_base(base_path)
    opened = store or Store(config.settings.storage_url, read_only=True)
    site = Site(config, opened, Links(base), now or (lambda: datetime.now(UTC)))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if store is None:
            opened.close()

    routes: list[BaseRoute] = [*page_routes(), *api_routes()]
    app = Starlette(
        routes=[Mount(base, routes=routes)] if base else routes,
        middleware=[Middleware(ReadOnlyHeaders)],
        exception_handlers={QueryError: _bad_query, HTTPException: _http_error, Exception: _bug},
        lifespan=lifespan,
    )
    app.state.site = site
    return app


def _wants_json(request: Request) -> bool:
    return "/api/" in request.url.path or request.url.path.endswith(".json")


async def _bad_query(request: Request, exc: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": str(exc)}, status_code=400)
    return site_of(request).page("error.html", 400, code=400, heading="Bad request", message=str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "error"
    if _wants_json(request):
        return JSONResponse({"error": detail}, status_code=code)
    heading = {404: "Not found", 405: "Method not allowed"}.get(code, "Error")
    return site_of(request).page("error.html", code, code=code, heading=heading, message=detail)


async def _bug(request: Request, exc: Exception) -> Response:
    log.exception("web.crashed", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
    message = "The page could not be made; the server's log says why."
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=500)
    return site_of(request).page("error.html", 500, code=500, heading="Server error", message=message)
