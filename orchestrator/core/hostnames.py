"""Who owns a hostname across the fleet: the pack's rule, re-exported for `plan`, `tenants add`
and the local edge.

One rule, one copy, and it has to live in the pack: `pulumi preview --policy-pack policies` runs
the pack with nothing of this repo on its path (it may import only pulumi_policy and itself), so
the pack cannot import the core. The rule (policies/clawdbot_policies/hostnames.py) is pure and
standard-library only, so re-exporting it here gives the core no dependency on Pulumi, the pack's
policies or any layer above; `core.pack` loads it under the analyzer's own module name, so the
policy runner and these callers share the very module the analyzer runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.core.model import TenantSpec
from orchestrator.core.pack import pack_module

if TYPE_CHECKING:
    from clawdbot_policies import hostnames as _rule
else:
    _rule = pack_module("hostnames")

Conflict = _rule.Conflict
FleetIndex = _rule.FleetIndex
TenantHosts = _rule.TenantHosts
conflicts = _rule.conflicts
fleet_to_json = _rule.fleet_to_json
normalize_host = _rule.normalize_host
tenant_hosts = _rule.tenant_hosts


def spec_hosts(spec: TenantSpec) -> TenantHosts:
    """A validated tenant's zone, routes and custom domains; claims are named by key path (`routes[0]`)."""
    return tenant_hosts(spec.id, spec.zone.name, spec.zone.id, spec.routes, spec.custom_domains)
