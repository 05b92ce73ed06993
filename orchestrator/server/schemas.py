"""The API's bodies: pydantic models, so requests are validated and the OpenAPI schema is exact."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.server.library import AuditEvent, Engine, TenantId

MAX_SELECTED = 1000


class Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorBody(Body):
    """Every error answer: one line, the CLI's message where the CLI has one."""

    error: str


class StatusRow(Body):
    tenant: str
    last_update: str | None
    bundle_hash: str | None
    drift: Literal["drifted", "clean"] | None
    drift_checked: str | None
    health: str | None
    isolation: Literal["workers", "dispatch"] | None = None
    """As the stack file asks (None: unreadable); health is judged alike in both modes."""


class StatusDoc(Body):
    """The same document as `status --json`."""

    ok: bool
    tenants: list[StatusRow]


class TenantView(Body):
    """One tenant as the page draws it: the stack file's spec, the deployed record, health, drift."""

    tenant: str
    stack: str
    zone: str | None = None
    routes: list[str] = []
    custom_domains: list[str] = []
    crons: list[str] = []
    config_version: int | None = None
    secret_names: list[str] = []
    """Names only; secret values are never read by the control room."""
    worker: str | None = None
    kv_namespace: str | None = None
    d1_database: str | None = None
    d1_location_hint: str | None = None
    config_error: str | None = None
    last_update: str | None = None
    bundle_hash: str | None = None
    drift: Literal["drifted", "clean"] | None = None
    drift_checked: str | None = None
    health: str | None = None
    health_reason: str | None = None
    isolation: Literal["workers", "dispatch"] | None = None
    served_bundle: str | None = None
    served_config_version: int | None = None
    job: str | None = None
    """Id of the job running or queued on this tenant."""


class TenantList(Body):
    tenants: list[TenantView]
    checked_at: str | None
    """When health was last probed for this view (the watcher's last round)."""


class HealthEntry(Body):
    tenant: str
    verdict: str
    reason: str
    url: str
    health: dict[str, Any] | None


class HealthDoc(Body):
    target: Literal["local", "remote"]
    tenants: list[HealthEntry]


class DriftEntry(Body):
    tenant: str
    state: Literal["drifted", "clean"] | None
    checked_at: str | None
    summary: str | None


class DriftDoc(Body):
    drifted: int
    tenants: list[DriftEntry]


class AuditDoc(Body):
    events: list[AuditEvent]
    """The audit log's own lines (`orchestrator.fleet.audit.AuditEvent`), newest first."""
    total: int
    """Events matching the filter before `limit` was applied."""


JobOperation = Literal["preview", "up", "refresh", "drift"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelling", "cancelled"]


class JobRequest(Body):
    """`POST /api/jobs`: a fleet operation over a tenant selection (`tenants` or `all`, exactly one)."""

    operation: JobOperation
    tenants: list[TenantId] = Field(default=[], max_length=MAX_SELECTED)
    all: bool = False
    concurrency: int | None = Field(default=None, ge=1, le=32)
    """Stacks operated at once; default as the CLI's, computed from this node's share of the API budget."""
    wave_size: int | None = Field(default=None, ge=1, le=1000)
    """up: tenants per wave after the canary; default as the CLI's, computed from this node's share of the
    API budget."""
    canary: TenantId | None = None
    continue_on_error: bool = False
    force: bool = False
    engine: Engine = "embedded"
    """Who runs the stacks, as the CLI's `--engine`: `embedded`, this server's own threads (the
    default); `temporal`, the workers of the Temporal cluster this server's CLAWDBOT_TEMPORAL_ADDRESS,
    _NAMESPACE and _TASK_QUEUE name (never given per request). Refused (400) when that cluster does
    not answer, before the job is accepted."""

    @model_validator(mode="after")
    def _selection(self) -> JobRequest:
        if bool(self.tenants) == self.all:
            raise ValueError("choose the tenants: tenants (a list of ids) or all: true")
        if self.canary is not None and self.operation != "up":
            raise ValueError("canary applies to up only")
        return self


class CancelRequest(Body):
    """`POST /api/jobs/{id}/cancel` takes an empty JSON object (state changes carry a JSON body)."""


class TenantProgress(Body):
    """One stack of a job, alike for both engines (fed by the same progress events)."""

    tenant: str
    state: Literal["queued", "running", "done", "skipped"]
    wave: int | None = None
    """up: the wave the stack ran in (0 is the canary); None before it started, and for other operations."""
    result: str | None = None
    """The verdict once done: ok, unchanged, failed, unhealthy, rolled-back, drifted, not-run, …"""
    detail: str = ""


class JobView(Body):
    id: str
    operation: JobOperation
    engine: Engine
    state: JobState
    by: str
    """Name of the token that started the job."""
    created: str
    started: str | None
    finished: str | None
    total: int
    done: int
    wave: int | None = None
    """up: the wave running now, or the last one (0 is the canary); None before the first."""
    tenants: list[TenantProgress]
    events: list[str]
    """The last progress lines (the cluster's rollout id, waves, gates, retries, halts), as the CLI prints them."""
    error: str | None
    report: dict[str, Any] | None
    """The fleet report (as `--json` prints it) once the job has finished."""


class JobList(Body):
    jobs: list[JobView]


class TimerView(Body):
    name: str
    """drift, health or backup."""
    unit: str
    last_run: str | None
    next_run: str | None
    result: str | None
    """systemd's result of the last run of the service: success, exit-code, timeout, ..."""
    active: str | None


class SchedulerDoc(Body):
    available: bool
    reason: str | None
    """Why timers cannot be read here (no systemd, no systemctl), when `available` is false."""
    timers: list[TimerView]


class Overview(Body):
    """The page's picture in one answer: the VPS side and every tenant."""

    project: str
    version: str
    state_backend: str
    passphrase_custody: str
    tenants: TenantList
    scheduler: SchedulerDoc
    jobs: JobList
