"""A hostname belongs to one tenant across the fleet: no route, custom domain or (dispatch mode)
routing entry on another's host.

One stack cannot see the others, so the fleet's zones, routes and custom domains come in as this
policy's config (`fleet`, written by `python -m orchestrator policy fleet-config` from the tenant
registry and passed by `policy check` and the fleet runs). Without it the policy cannot vouch for
isolation and says so (mandatory). The rule itself is `clawdbot_policies.hostnames`, the one copy
the orchestrator's `plan`, `tenants add` and local edge use too.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import PolicyConfigSchema, ReportViolation, StackValidationArgs, StackValidationPolicy

from .. import constants as c
from .. import context
from ..hostnames import FLEET_SCHEMA, Claim, TenantHosts, conflicts, fleet_from_json
from ..props import get_str

FLEET_KEY = "fleet"
_FIX = "a hostname belongs to one tenant: drop it here or serve it from that tenant's stack"


def hostname_ownership_validator(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = list(args.resources)
    edges = [r for r in resources if r.resource_type == c.TENANT_EDGE]
    config = args.get_config()
    ctx = context.resolve(config, urns=[r.urn for r in resources[:1]], component_name=edges[0].name if edges else None)
    if ctx.tenant_id is None:
        args.not_applicable("no tenant id: not a prod.<tenant> stack and no clawdbot:tenant config")
        return
    fleet = config.get(FLEET_KEY)
    if not isinstance(fleet, Mapping):
        report_violation(
            f"The fleet's hostnames are unknown, so {ctx.label()}'s routes cannot be checked against other "
            f"tenants'; pass policy config {{'hostname-ownership': {{'{FLEET_KEY}': ...}}}} "
            "(python -m orchestrator policy fleet-config writes it).",
            None,
        )
        return
    claims: list[Claim] = []
    urns: dict[str, str] = {}
    for resource in resources:
        if resource.resource_type == c.ROUTE:
            claims.append(Claim.route(resource.name, get_str(resource.props, "pattern") or ""))
        elif resource.resource_type == c.CUSTOM_DOMAIN:
            claims.append(Claim.domain(resource.name, get_str(resource.props, "hostname") or ""))
        elif resource.resource_type == c.KV_ENTRY and (get_str(resource.props, "keyName") or "").startswith(
            c.ROUTING_HOST_KEY_PREFIX
        ):
            # Dispatch mode has no routes or domains: a routing entry is the claim (the dispatcher
            # routes its host, a `*.` one every name below, as a whole-host route would).
            host = (get_str(resource.props, "keyName") or "").removeprefix(c.ROUTING_HOST_KEY_PREFIX)
            claims.append(Claim.route(resource.name, f"{host}/*"))
        else:
            continue
        urns[resource.name] = resource.urn
    mine = TenantHosts(ctx.tenant_id, ctx.zone_name, ctx.zone_id, tuple(claims))
    for conflict in conflicts(mine, fleet_from_json(fleet)):
        if conflict.where == "zone":
            report_violation(f"The zone of {ctx.label()}: {conflict.reason}.", None)
        else:
            report_violation(f"{conflict.where}: {conflict.reason}; {_FIX}.", urns[conflict.where])


hostname_ownership = StackValidationPolicy(
    name="hostname-ownership",
    description="Prohibits a zone, route, custom domain or routing entry that reaches a hostname another tenant owns.",
    validate=hostname_ownership_validator,
    config_schema=PolicyConfigSchema(properties={**context.CONTEXT_SCHEMA, FLEET_KEY: FLEET_SCHEMA}),
)
