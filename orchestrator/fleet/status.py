"""The fleet at a glance: per tenant the last deploy, the last drift check and live health, and a verdict.

Read from the deployed records (no engine); health is one probe per tenant through the gate port.
The fleet is not ok when a tenant was never deployed, drifted at its last check, or is not healthy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.core.health import HealthCheck, HealthTarget
from orchestrator.core.names import tenant_of
from orchestrator.fleet.ports import DeployedStore, HealthGate


@dataclass(frozen=True)
class TenantStatus:
    tenant: str
    last_update: str | None
    bundle_hash: str | None
    drift: str | None
    """`drifted`, `clean`, or None when never checked."""
    drift_checked: str | None
    health: str | None
    """The health verdict, or None when not probed (no health URL, or probing off)."""
    isolation: str | None = None
    """`workers` or `dispatch`, as the stack file asks (None: unreadable). Health is judged alike in both."""

    @property
    def ok(self) -> bool:
        return self.last_update is not None and self.drift != "drifted" and self.health in (None, "ok")


@dataclass(frozen=True)
class FleetStatus:
    tenants: tuple[TenantStatus, ...]
    probes: tuple[HealthCheck, ...] = ()
    """The health checks behind each `health` (what the control room shows as the reason)."""

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tenants)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "tenants": [asdict(t) for t in self.tenants]}  # no probes: the CLI's JSON


def fleet_status(
    store: DeployedStore,
    stacks: Sequence[str],
    gate: HealthGate | None,
    isolation: Callable[[str], str | None] = lambda stack: None,
) -> FleetStatus:
    """The status of `stacks`; `gate` None: do not probe health; `isolation` names each stack's mode."""
    records = {stack: (store.get(stack), store.drift(stack)) for stack in stacks}
    targets = [
        HealthTarget(stack, tenant_of(stack), record.health_url, record.bundle_hash, record.config_version)
        for stack, (record, _) in records.items()
        if record is not None and record.health_url and gate is not None
    ]
    probes = gate(targets).checks if gate is not None and targets else ()
    checks = {c.target.tenant: c for c in probes}
    rows = []
    for stack, (record, drifted) in records.items():
        check = checks.get(tenant_of(stack))
        rows.append(
            TenantStatus(
                tenant=tenant_of(stack),
                last_update=record.updated_at.isoformat(timespec="seconds") if record else None,
                bundle_hash=record.bundle_hash if record else None,
                drift=None if drifted is None else ("drifted" if drifted.drifted else "clean"),
                drift_checked=drifted.checked_at.isoformat(timespec="seconds") if drifted else None,
                health=check.verdict if check else None,
                isolation=isolation(stack),
            )
        )
    return FleetStatus(tuple(rows), tuple(probes))
