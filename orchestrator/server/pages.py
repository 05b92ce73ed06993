"""The page: a public shell, and HTML fragments rendered here, fetched by `static/app.js` with the token.

The shell (`/`, `/tenants/<id>`, `/jobs`) holds no data, so it needs no token; everything it shows
comes from `/ui/*` fragments and the event stream, which need the bearer token like the API.
Fragments are rendered from the same views the API answers with (`TenantView`, `JobView`), so
the page can never know more than the API. No build step, no CDN: one script, one stylesheet.
"""

from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import TypeAdapter, ValidationError

from orchestrator.server.errors import NotFound
from orchestrator.server.library import ENGINES, TenantId
from orchestrator.server.schemas import TenantView
from orchestrator.server.state import AppState

HERE = Path(__file__).parent
STATIC = HERE / "static"
HEALTH_CLASS = {
    "ok": "ok",
    "degraded": "warn",
    "wrong-version": "warn",
    "unreachable": "bad",
    "invalid": "bad",
    "wrong-tenant": "bad",
}
Group = Literal["none", "health", "zone", "drift"]
TENANT: TypeAdapter[str] = TypeAdapter(TenantId)


def health_class(view: TenantView) -> str:
    if view.config_error:
        return "bad"
    return HEALTH_CLASS.get(view.health or "", "unknown")


def short(value: str | None, n: int = 12) -> str:
    return value[:n] if value else "—"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = short
    env.globals["health_class"] = health_class
    return env


def group_tenants(views: list[TenantView], by: Group) -> OrderedDict[str, list[TenantView]]:
    groups: OrderedDict[str, list[TenantView]] = OrderedDict()
    order = {"bad": 0, "warn": 1, "unknown": 2, "ok": 3}

    def key(v: TenantView) -> str:
        if by == "health":
            return v.health or ("config error" if v.config_error else "unknown")
        if by == "zone":
            return v.zone or "no zone"
        if by == "drift":
            return v.drift or "never checked"
        return "all tenants"

    ranked = sorted(views, key=lambda v: (order[health_class(v)], v.tenant)) if by == "health" else views
    for view in ranked:
        groups.setdefault(key(view), []).append(view)
    return groups


def build_pages(state: AppState) -> APIRouter:
    env = _environment()
    reader = Depends(state.guard.actor)
    router = APIRouter(include_in_schema=False)

    def html(template: str, **values: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**values))

    def shell(view: str, tenant: str = "") -> HTMLResponse:
        return html("shell.html", view=view, tenant=tenant, project=state.library.project)

    @router.get("/")
    def index() -> HTMLResponse:
        return shell("overview")

    @router.get("/jobs")
    def jobs_page() -> HTMLResponse:
        return shell("jobs")

    @router.get("/tenants/{tenant}")
    def tenant_page(tenant: str) -> HTMLResponse:
        try:
            TENANT.validate_python(tenant)
        except ValidationError:
            raise NotFound(f"{tenant!r} is not a tenant id") from None
        return shell("tenant", tenant)

    @router.get("/ui/overview", dependencies=[reader])
    def overview(group: Group = "none") -> HTMLResponse:
        picture = state.overview()
        views = picture.tenants.tenants
        counts: dict[str, int] = {}
        for view in views:
            counts[health_class(view)] = counts.get(health_class(view), 0) + 1
        return html(
            "overview.html",
            o=picture,
            groups=group_tenants(views, group),
            group=group,
            counts=counts,
            running=[j for j in picture.jobs.jobs if j.state in ("queued", "running", "cancelling")],
            mode=state.watcher.snapshot.mode,
        )

    @router.get("/ui/boxes", dependencies=[reader])
    def boxes(tenant: Annotated[list[str], Query(max_length=1000)]) -> HTMLResponse:
        wanted = set(tenant)
        views = [v for v in state.tenant_list().tenants if v.tenant in wanted]
        return html("boxes.html", views=views)

    @router.get("/ui/scheduler", dependencies=[reader])
    def scheduler() -> HTMLResponse:
        return html("scheduler.html", s=state.watcher.snapshot.scheduler)

    @router.get("/ui/tenants/{tenant}", dependencies=[reader])
    def tenant_detail(tenant: str) -> HTMLResponse:
        view = state.tenant(tenant)
        events = [e for e in state.library.audit_events() if e.tenant == tenant][-20:]
        return html("tenant.html", t=view, events=list(reversed(events)), mode=state.watcher.snapshot.mode)

    @router.get("/ui/jobs", dependencies=[reader])
    def jobs() -> HTMLResponse:
        return html(
            "jobs.html", jobs=[j.view() for j in state.jobs.list()], tenants=state.tenant_names(), engines=ENGINES
        )

    @router.get("/ui/jobs/{job_id}", dependencies=[reader])
    def job(job_id: str) -> HTMLResponse:
        return html("job.html", j=state.jobs.get(job_id).view())

    return router


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)
