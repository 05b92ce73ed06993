"""One owner per hostname across the tenant registry: what `plan`, `tenants add` and the local edge refuse.

The rule is `core.hostnames` (the policy pack's own); this module feeds it the registry, the
`Pulumi.prod.<tenant>.yaml` files. Other tenants are read leniently - their zone, routes and
custom domains as written, even when the rest of their file does not validate - so a broken
file still holds on to its hostnames instead of silently giving them away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.config.tenant_config import TENANT_KEY, read_stack_config, tenant_stacks
from orchestrator.core.errors import ConfigError
from orchestrator.core.hostnames import (
    Conflict,
    FleetIndex,
    TenantHosts,
    conflicts,
    fleet_to_json,
    spec_hosts,
    tenant_hosts,
)
from orchestrator.core.model import TenantSpec
from orchestrator.core.names import tenant_of, tenant_stack

OWNERSHIP_POLICY = "hostname-ownership"
"""The pack's policy that checks a stack's routes against the fleet (policies/.../rules/ownership.py)."""


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _declared(stack: str, raw: Any) -> TenantHosts:
    tenant: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    raw_zone = tenant.get("zone")
    zone: Mapping[str, Any] = raw_zone if isinstance(raw_zone, Mapping) else {}
    name, zone_id = zone.get("name"), zone.get("id")
    return tenant_hosts(
        tenant_of(stack),
        name if isinstance(name, str) and name else None,
        zone_id if isinstance(zone_id, str) and zone_id else None,
        _strings(tenant.get("routes")),
        _strings(tenant.get("custom_domains")),
    )


def registry_hosts(project_dir: Path, *, without: str | None = None) -> list[TenantHosts]:
    """Every registered tenant's zone and claims as its stack file declares them (unreadable files left out)."""
    fleet = []
    for stack in tenant_stacks(project_dir):
        if without is not None and stack == tenant_stack(without):
            continue
        try:
            config = read_stack_config(project_dir, stack)
        except ConfigError:
            continue
        fleet.append(_declared(stack, config.get(TENANT_KEY)))
    return fleet


def ownership_error(stack: str, found: Sequence[Conflict]) -> str:
    """One line: the stack, the key path of the first entry at fault, the reason naming the owner."""
    first = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"stack {stack}: {TENANT_KEY}.{first.where}: {first.reason}{more}"


def check_ownership(spec: TenantSpec, fleet: Sequence[TenantHosts] | FleetIndex) -> None:
    """Refuse `spec` when its zone, a route or a custom domain reaches another tenant's hostname.

    To check many tenants of one fleet, pass a `FleetIndex` of it: built once, each check then
    costs what it finds (lookups over the names' suffixes), not a scan of the fleet.
    """
    hosts = spec_hosts(spec)
    found = fleet.conflicts(hosts) if isinstance(fleet, FleetIndex) else conflicts(hosts, fleet)
    if found:
        raise ConfigError(ownership_error(tenant_stack(spec.id), found))


def check_registered_ownership(project_dir: Path, spec: TenantSpec) -> None:
    """`check_ownership` against every other tenant of the registry in `project_dir`."""
    check_ownership(spec, registry_hosts(project_dir, without=spec.id))


def fleet_policy_config(project_dir: Path) -> dict[str, dict[str, Any]]:
    """Policy config giving the pack the registry's hostnames (`pulumi preview --policy-pack-config` format)."""
    return {OWNERSHIP_POLICY: {"fleet": fleet_to_json(registry_hosts(project_dir))}}
