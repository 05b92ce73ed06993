"""`status`: per tenant the deployed record, the last drift check and one probe of the deployed
health URL, read without starting the engine. The CLI prints it; the control room serves it.

The rows and the verdict are the fleet's (`orchestrator.fleet.status`); this wires them to the
deployed records on disk and a single-probe health gate, in the shape both doors print.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec, project_name
from orchestrator.core.dispatch import isolation_of
from orchestrator.core.errors import ConfigError
from orchestrator.core.health import HealthCheck
from orchestrator.core.model import Isolation
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet import health
from orchestrator.fleet.status import TenantStatus, fleet_status


def status_rows(
    settings: Settings, stacks: Sequence[str], *, probe: bool
) -> tuple[list[dict[str, Any]], dict[str, HealthCheck]]:
    """The rows of `status --json` and the probes behind their `health` (keyed by tenant)."""
    store = FileDeployedStore(settings, project_name(settings.project_dir))
    gate = partial(health.gate, timeout_s=0, interval_s=1) if probe else None
    status = fleet_status(store, stacks, gate, isolation_reader(settings.project_dir))
    return [asdict(t) for t in status.tenants], {c.target.tenant: c for c in status.probes}


def isolation_reader(project_dir: Path) -> Callable[[str], Isolation | None]:
    """Each stack's isolation mode as its file and the platform's ask (`isolation_of`); None if unreadable.

    A workers-mode platform refuses a tenant pinned to dispatch, so only in dispatch mode is each
    tenant's file read (a pin back to `workers` while others move).
    """
    try:
        platform = load_platform_spec(project_dir)
    except ConfigError:
        return lambda stack: None
    if platform.isolation == "workers":
        return lambda stack: "workers"

    def isolation(stack: str) -> Isolation | None:
        try:
            return isolation_of(load_tenant_spec(project_dir, stack), platform)
        except ConfigError:
            return None

    return isolation


def status_ok(rows: Sequence[dict[str, Any]]) -> bool:
    """`status` exits 1 when a tenant drifted, is not healthy, or was never deployed by the fleet."""
    return all(TenantStatus(**row).ok for row in rows)
