"""Registering and unregistering tenants: the registry write, the audit line, and the rule for removal.

A tenant may leave the registry only once its edge is gone: no resource left in its stack but
what `destroy` keeps on purpose, and that only after the operator removed it deliberately.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.config.ownership import check_registered_ownership
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import project_name, register_tenant, unregister_tenant, validate_tenant
from orchestrator.core.errors import EdgeError
from orchestrator.core.names import tenant_of, tenant_stack
from orchestrator.engine.kept import leftovers, removal_commands
from orchestrator.engine.records import FileDeployedStore
from orchestrator.engine.state_store import state_of
from orchestrator.fleet.audit import AuditLog


def add_tenant(settings: Settings, raw: Mapping[str, Any]) -> Path:
    """Write the tenant's validated stack file and audit it; the next `up` deploys it.

    Refused before anything is written when its hosts or zone belong to another registered tenant.
    """
    tenant = str(raw.get("id", ""))
    # Declared secrets get their values afterwards (`secrets set`), so none is required yet.
    spec = validate_tenant(tenant_stack(tenant), raw, [], require_values=False)
    check_registered_ownership(settings.project_dir, spec)
    path = register_tenant(settings.project_dir, raw)
    AuditLog(settings.audit_log).record(stack=tenant_stack(tenant), tenant=tenant, operation="tenant-add", result="ok")
    return path


def remove_tenant(settings: Settings, stack: str) -> None:
    """Unregister a destroyed tenant; refuse, saying what to run, while its stack holds resources."""
    tenant = tenant_of(stack)
    project = project_name(settings.project_dir)
    left = leftovers(state_of(settings), project, stack)
    if left.unprotected:
        raise EdgeError(
            f"tenant {tenant} still has {len(left.unprotected)} resources in stack {stack}: "
            f"run `python -m orchestrator destroy --tenant {tenant} --yes` first"
        )
    if left.protected:
        # destroy kept these on purpose (the D1 database): running it again would change nothing.
        names = ", ".join(f"{k.kind} {k.name}" for k in left.protected)
        raise EdgeError(
            f"tenant {tenant}: stack {stack} still holds protected {names}, which destroy keeps on purpose; "
            f"{removal_commands(settings, stack, left.protected).describe()}; then run "
            f"`python -m orchestrator tenants remove {tenant} --yes` again"
        )
    unregister_tenant(settings.project_dir, stack)
    FileDeployedStore(settings, project).forget(stack)
    AuditLog(settings.audit_log).record(stack=stack, tenant=tenant, operation="tenant-remove", result="ok")
