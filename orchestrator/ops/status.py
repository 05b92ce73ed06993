"""`status`: per tenant the deployed record, the last drift check and one probe of the deployed
health URL, read without starting the engine. The CLI prints it; the control room serves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import project_name
from orchestrator.core.health import GateResult, HealthCheck, HealthTarget
from orchestrator.core.names import tenant_of
from orchestrator.engine.stacks import FileDeployedStore
from orchestrator.fleet import health


def status_rows(
    settings: Settings, stacks: Sequence[str], *, probe: bool
) -> tuple[list[dict[str, Any]], dict[str, HealthCheck]]:
    """The rows of `status --json` and the probes behind their `health` (keyed by tenant)."""
    store = FileDeployedStore(settings, project_name(settings.project_dir))
    rows: list[dict[str, Any]] = []
    targets = []
    for stack in stacks:
        record, drifted = store.get(stack), store.drift(stack)
        rows.append(
            {
                "tenant": tenant_of(stack),
                "last_update": record.updated_at.isoformat(timespec="seconds") if record else None,
                "bundle_hash": record.bundle_hash if record else None,
                "drift": None if drifted is None else ("drifted" if drifted.drifted else "clean"),
                "drift_checked": drifted.checked_at.isoformat(timespec="seconds") if drifted else None,
                "health": None,
            }
        )
        if probe and record and record.health_url:
            targets.append(
                HealthTarget(stack, tenant_of(stack), record.health_url, record.bundle_hash, record.config_version)
            )
    gate = health.gate(targets, timeout_s=0, interval_s=1) if targets else GateResult(())
    checks = {c.target.tenant: c for c in gate.checks}
    for row in rows:
        check = checks.get(row["tenant"])
        row["health"] = check.verdict if check else None
    return rows, checks


def status_ok(rows: Sequence[dict[str, Any]]) -> bool:
    """`status` exits 1 when a tenant drifted, is not healthy, or was never deployed by the fleet."""
    return not any(
        r["drift"] == "drifted" or (r["health"] not in (None, "ok")) or r["last_update"] is None for r in rows
    )
