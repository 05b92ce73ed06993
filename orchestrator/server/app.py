"""`create_app`: the ASGI app of the control room (FastAPI on Starlette, served by uvicorn).

FastAPI rather than bare Starlette: the request and answer bodies are the pydantic models of
`schemas`, so validation and the OpenAPI schema come from one definition, as everywhere else in
this repo (pydantic at the edges). Its interactive docs pages load their scripts from a CDN, so
they are switched off: the schema itself is served, behind the token, at `/api/openapi.json`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from orchestrator.server.api import build_api
from orchestrator.server.errors import JobConflict, JobNotFound, NotFound, Unavailable
from orchestrator.server.events import TooManyClients
from orchestrator.server.library import EdgeError, Library, report_line
from orchestrator.server.pages import build_pages, static_files
from orchestrator.server.security import NotJson, RateLimited, SecurityHeaders, Unauthorized
from orchestrator.server.serve import ServeConfig
from orchestrator.server.state import AppState

log = logging.getLogger(__name__)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": report_line(message, 400)}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {message}{more}"


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        return _error(401, "unauthorized", {"www-authenticate": "Bearer"})

    @app.exception_handler(NotJson)
    async def not_json(request: Request, exc: NotJson) -> JSONResponse:
        return _error(415, "state-changing requests need a JSON body (Content-Type: application/json)")

    @app.exception_handler(RateLimited)
    async def limited(request: Request, exc: RateLimited) -> JSONResponse:
        return _error(429, str(exc), {"retry-after": str(max(1, round(exc.retry_after_s)))})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, "bad request")
        return _error(exc.status_code, message)

    @app.exception_handler(TooManyClients)
    async def busy(request: Request, exc: TooManyClients) -> JSONResponse:
        return _error(503, str(exc), {"retry-after": "30"})

    @app.exception_handler(EdgeError)
    async def edge_error(request: Request, exc: EdgeError) -> JSONResponse:
        status = 400
        if isinstance(exc, JobConflict):
            status = 409
        elif isinstance(exc, JobNotFound | NotFound):
            status = 404
        elif isinstance(exc, Unavailable):
            status = 503
        return _error(status, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; the server log has the details")


def create_app(library: Library, config: ServeConfig | None = None, *, start_watcher: bool = True) -> FastAPI:
    state = AppState.build(library, config or ServeConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.hub.bind(asyncio.get_running_loop())
        if start_watcher:
            await asyncio.to_thread(state.watcher.refresh)  # the first picture before the first request
            state.watcher.start()
        try:
            yield
        finally:
            state.watcher.stop()
            state.jobs.close()

    app = FastAPI(
        title="Clawdbot edge control room",
        version=state.version,
        description="Tenants, status, health, drift, audit and fleet jobs. Every route but /api/live needs "
        "`Authorization: Bearer <token>` (`python -m orchestrator serve token add NAME`).",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.control = state
    _install_errors(app)
    app.include_router(build_api(state))
    app.include_router(build_pages(state))
    app.mount("/static", static_files(), name="static")
    app.add_middleware(SecurityHeaders)
    return app
