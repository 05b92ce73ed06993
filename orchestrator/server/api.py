"""`/api/*`: JSON in, JSON out, every answer typed (the OpenAPI schema is `/api/openapi.json`)."""

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from orchestrator.server.jobs import job_json
from orchestrator.server.library import tenant_of
from orchestrator.server.schemas import (
    AuditDoc,
    CancelRequest,
    DriftDoc,
    DriftEntry,
    ErrorBody,
    HealthDoc,
    HealthEntry,
    JobList,
    JobRequest,
    JobView,
    Overview,
    SchedulerDoc,
    StatusDoc,
    TenantList,
    TenantView,
)
from orchestrator.server.security import Actor
from orchestrator.server.state import AppState

TenantQuery = Annotated[
    list[str] | None, Query(alias="tenant", max_length=1000, description="A tenant id (repeatable).")
]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 415, 429, 503)}


def build_api(state: AppState) -> APIRouter:
    reader = Depends(state.guard.actor)
    router = APIRouter(prefix="/api", responses=ERRORS)

    @router.get("/live", tags=["meta"], summary="Liveness (no token needed)")
    def live() -> dict[str, bool]:
        return {"ok": True}

    @router.get("/openapi.json", tags=["meta"], dependencies=[reader], include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        schema = dict(request.app.openapi())
        components = dict(schema.get("components", {}))
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        schema["components"] = components
        schema["security"] = [{"bearer": []}]
        return JSONResponse(schema)

    @router.get("/overview", response_model=Overview, tags=["page"], dependencies=[reader])
    def overview() -> Overview:
        return state.overview()

    @router.get("/tenants", response_model=TenantList, tags=["tenants"], dependencies=[reader])
    def tenants(q: Annotated[str | None, Query(max_length=100)] = None) -> TenantList:
        listing = state.tenant_list()
        if q:
            needle = q.lower()
            listing = listing.model_copy(
                update={"tenants": [t for t in listing.tenants if needle in state.search_text(t)]}
            )
        return listing

    @router.get("/tenants/{tenant}", response_model=TenantView, tags=["tenants"], dependencies=[reader])
    def tenant(tenant: str) -> TenantView:
        return state.tenant(tenant)

    @router.get("/status", response_model=StatusDoc, tags=["status"], dependencies=[reader])
    def status() -> Response:
        body, checked_at = state.status_bytes()
        return Response(body, media_type="application/json", headers={"x-checked-at": checked_at or ""})

    @router.get("/health", response_model=HealthDoc, tags=["status"], dependencies=[reader])
    def health(tenant: TenantQuery = None, mode: Literal["auto", "local", "remote"] = "auto") -> HealthDoc:
        stacks = state.library.select(tenant) if tenant else []
        target, checks = state.library.health([tenant_of(s) for s in stacks], mode)
        return HealthDoc(target="local" if target == "local" else "remote", tenants=[HealthEntry(**c) for c in checks])

    @router.get("/drift", response_model=DriftDoc, tags=["status"], dependencies=[reader])
    def drift(tenant: TenantQuery = None) -> DriftDoc:
        entries = [DriftEntry(**d) for d in state.library.drift(state.library.select(tenant))]
        return DriftDoc(drifted=sum(1 for d in entries if d.state == "drifted"), tenants=entries)

    @router.get("/audit", response_model=AuditDoc, tags=["audit"], dependencies=[reader])
    def audit(
        tenant: Annotated[str | None, Query(max_length=64)] = None,
        operation: Annotated[str | None, Query(max_length=64)] = None,
        result: Annotated[str | None, Query(max_length=64)] = None,
        who: Annotated[str | None, Query(max_length=200, description="Substring of `who` (e.g. token:ci).")] = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> AuditDoc:
        events = [
            e
            for e in state.library.audit_events()
            if (tenant is None or e.tenant == tenant)
            and (operation is None or e.operation == operation)
            and (result is None or e.result == result)
            and (who is None or who in e.who)
            and (since is None or e.when >= since)
        ]
        return AuditDoc(events=list(reversed(events))[:limit], total=len(events))

    @router.get("/scheduler", response_model=SchedulerDoc, tags=["status"], dependencies=[reader])
    def scheduler() -> SchedulerDoc:
        return state.watcher.snapshot.scheduler

    @router.get("/jobs", response_model=JobList, tags=["jobs"], dependencies=[reader])
    def jobs() -> JobList:
        return JobList(jobs=[j.view() for j in state.jobs.list()])

    @router.get("/jobs/{job_id}", response_model=JobView, tags=["jobs"], dependencies=[reader])
    def job(job_id: str) -> JobView:
        return state.jobs.get(job_id).view()

    @router.post("/jobs", response_model=JobView, status_code=202, tags=["jobs"])
    def start_job(body: JobRequest, actor: Annotated[Actor, Depends(state.guard.changer)]) -> JSONResponse:
        job = state.jobs.submit(body, actor.name, state.library.audit(actor.who))
        return JSONResponse(job_json(job), status_code=202, headers={"location": f"/api/jobs/{job.id}"})

    @router.post("/jobs/{job_id}/cancel", response_model=JobView, tags=["jobs"])
    def cancel_job(job_id: str, body: CancelRequest, actor: Annotated[Actor, Depends(state.guard.changer)]) -> JobView:
        return state.jobs.cancel(job_id, state.library.audit(actor.who)).view()

    @router.get("/events", tags=["page"], dependencies=[reader], response_class=StreamingResponse)
    async def events() -> StreamingResponse:
        """Server-Sent Events: `hello`, then `tenant`, `job`, `scheduler`, `status`, `resync`."""
        stream = state.hub.stream(json.loads(state.overview().model_dump_json()))
        first = await anext(stream)  # raises TooManyClients (503) before the answer starts

        async def frames() -> Any:
            yield first
            async for chunk in stream:
                yield chunk

        return StreamingResponse(frames(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    return router
