"""The control room's one window onto the rest of the orchestrator.

Every import of another orchestrator package by `orchestrator.server` is here, so the doors stay
thin and a re-layout of the library only touches this file. The HTTP API and the page call what
the CLI calls: tenant selection, the status rows of `status --json`, the probes of `health`, the
drift records and the audit log, and fleet runs on either engine as the CLI's `--engine` makes them
(`cluster/engines.py`): embedded, with the CLI's preflight, fleet lease and one throttled Cloudflare
API budget; temporal, on the cluster's workers, with the CLAWDBOT_TEMPORAL_* settings of this server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from orchestrator.cluster.engines import check_engine, run_on_engine
from orchestrator.config.atomic_file import write_atomically
from orchestrator.config.private_files import file_problem
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import (
    load_platform_spec,
    load_tenant_spec,
    project_name,
    select_tenant_stacks,
    tenant_stacks,
)
from orchestrator.core.addresses import is_loopback
from orchestrator.core.errors import ConfigError, EdgeError
from orchestrator.core.health import GateResult, HealthCheck, HealthTarget
from orchestrator.core.masking import one_line, redact, report_line
from orchestrator.core.model import TenantId, resource_prefix
from orchestrator.core.names import stack_file, tenant_of, tenant_stack
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet import health as health_checks
from orchestrator.fleet.audit import AuditEvent, AuditLog, default_who, read_events
from orchestrator.fleet.changes import Rendered, bundle_renderer
from orchestrator.fleet.ports import HealthGate, Operation, StackExecutor
from orchestrator.fleet.report import FleetReport, RolloutOptions, drift_options
from orchestrator.fleet.runner import NOTED, Progress
from orchestrator.fleet.sizing import Sizing
from orchestrator.local_edge import LocalEdge, LocalEdgeError
from orchestrator.ops.fleet_run import ENGINES, Engine, RunSeams, automation_executor, run_share, sizing_for_budget
from orchestrator.ops.health import check_json, local_checks, remote_checks
from orchestrator.ops.status import status_ok, status_rows
from orchestrator.server.errors import Unavailable

__all__ = [
    "ENGINES",
    "NOTED",
    "AuditEvent",
    "AuditLog",
    "ConfigError",
    "EdgeError",
    "Engine",
    "FleetReport",
    "GateResult",
    "HealthCheck",
    "HealthGate",
    "HealthTarget",
    "Library",
    "Operation",
    "Rendered",
    "RolloutOptions",
    "RunSeams",
    "Settings",
    "Sizing",
    "StackExecutor",
    "TenantId",
    "Unavailable",
    "default_who",
    "drift_options",
    "file_problem",
    "is_loopback",
    "one_line",
    "redact",
    "report_line",
    "tenant_of",
    "tenant_stack",
    "write_atomically",
]


def real_seams() -> RunSeams:
    """The engine's executor, the health gate with its default timing, the bundle renderer (as the CLI)."""
    gate = partial(health_checks.gate, timeout_s=health_checks.GATE_TIMEOUT_S, interval_s=health_checks.GATE_INTERVAL_S)
    return RunSeams(automation_executor, gate, bundle_renderer)


@dataclass(frozen=True)
class _Summary:
    key: tuple[int, int]
    data: dict[str, Any]


@dataclass
class Library:
    """The library calls behind every route, bound to one `Settings`."""

    settings: Settings
    seams: RunSeams = field(default_factory=real_seams)
    _summaries: dict[str, _Summary] = field(default_factory=dict)

    @property
    def project(self) -> str:
        return project_name(self.settings.project_dir)

    def store(self) -> FileDeployedStore:
        return FileDeployedStore(self.settings, self.project)

    # -- tenants ------------------------------------------------------------------------------

    def stacks(self) -> list[str]:
        return tenant_stacks(self.settings.project_dir)

    def select(self, tenants: Sequence[str] | None) -> list[str]:
        """The stacks of `tenants` (every tenant when None): the one tenant selection, the CLI's message."""
        return select_tenant_stacks(self.settings.project_dir, tenants)

    def summary(self, stack: str) -> dict[str, Any]:
        """What the tenant's stack file asks for (no secret value: the spec holds secret *names*)."""
        path = stack_file(self.settings.project_dir, stack)
        try:
            info = path.stat()
            key = (info.st_mtime_ns, info.st_size)
        except OSError:
            key = (0, 0)
        cached = self._summaries.get(stack)
        if cached is not None and cached.key == key:
            return cached.data
        try:
            spec = load_tenant_spec(self.settings.project_dir, stack)
            prefix = resource_prefix(load_platform_spec(self.settings.project_dir), spec.id)
            data: dict[str, Any] = {
                "zone": spec.zone.name,
                "routes": list(spec.routes),
                "custom_domains": list(spec.custom_domains),
                "crons": list(spec.crons),
                "config_version": spec.config_version,
                "secret_names": list(spec.secret_names),
                "worker": prefix,
                "kv_namespace": prefix,
                "d1_database": prefix,
                "d1_location_hint": spec.d1_location_hint,
                "config_error": None,
            }
        except EdgeError as exc:
            data = {"config_error": report_line(exc)}
        self._summaries[stack] = _Summary(key, data)
        return data

    # -- status, health, drift, audit ---------------------------------------------------------

    def status_rows(self, stacks: Sequence[str], *, probe: bool) -> tuple[list[dict[str, Any]], dict[str, HealthCheck]]:
        """The rows of `status --json` (last update, deployed bundle, drift, live health) and the probes."""
        return status_rows(self.settings, stacks, probe=probe)

    @staticmethod
    def status_ok(rows: Sequence[dict[str, Any]]) -> bool:
        return status_ok(rows)

    def local_edge(self) -> LocalEdge:
        return LocalEdge(self.settings.local_edge_dir)

    def health_mode(self, mode: str) -> str:
        """`auto` is the CLI's default: the local edge when it is running, else Cloudflare."""
        if mode != "auto":
            return mode
        return "local" if self.local_edge().status().state == "running" else "remote"

    def health(self, tenants: Sequence[str], mode: str) -> tuple[str, list[dict[str, Any]]]:
        """Probe now, as `health --local|--remote` does; returns the mode used and one entry per tenant."""
        chosen = self.health_mode(mode)
        if chosen == "local":
            try:
                checks = local_checks(self.local_edge(), self.settings.project_dir, tenants)
            except LocalEdgeError as exc:
                raise Unavailable(f"{exc} (start it with `local up`, or pass --remote)") from None
        else:
            checks = remote_checks(self.settings, tenants)
        return chosen, [check_json(c) for c in checks]

    def drift(self, stacks: Sequence[str]) -> list[dict[str, Any]]:
        store = self.store()
        out = []
        for stack in stacks:
            record = store.drift(stack)
            out.append(
                {
                    "tenant": tenant_of(stack),
                    "state": None if record is None else ("drifted" if record.drifted else "clean"),
                    "checked_at": record.checked_at.isoformat(timespec="seconds") if record else None,
                    "summary": record.summary if record else None,
                }
            )
        return out

    def audit_events(self) -> list[AuditEvent]:
        return read_events(self.settings.audit_log)

    def audit(self, who: str) -> AuditLog:
        return AuditLog(self.settings.audit_log, who=who)

    # -- fleet runs ---------------------------------------------------------------------------

    def sizing(self, concurrency: int | None, wave_size: int | None, engine: Engine = "embedded") -> Sizing:
        """A job's concurrency and wave size: as asked, else sized as the CLI's from the share of the
        budget its run spends (`fleet_run.run_share`: this node's, or the task queue's on the cluster)."""
        share = run_share(self.settings, cluster=engine == "temporal")
        return sizing_for_budget(self.seams.budget, concurrency, wave_size, share=share)

    def check_engine(self, engine: Engine) -> None:
        """Refuse a job before it is accepted when its engine cannot be reached (naming the field)."""
        try:
            check_engine(engine, self.settings)
        except EdgeError as exc:
            raise EdgeError(f"engine: {engine}: {exc}") from None

    def run_fleet(
        self,
        stacks: list[str],
        options: RolloutOptions,
        *,
        audit: AuditLog,
        progress: Progress,
        cancelled: Callable[[], bool],
        engine: Engine = "embedded",
    ) -> FleetReport:
        """The CLI's fleet run on `engine`, held by this client (embedded: preflight, lease, one
        throttled API budget; temporal: a rollout workflow whose nodes audit it as this holder)."""
        holder = f"{audit.who} via {default_who()}"
        return run_on_engine(
            engine,
            self.settings,
            stacks,
            options,
            self.seams,
            audit=audit,
            holder=holder,
            progress=progress,
            cancelled=cancelled,
        )
