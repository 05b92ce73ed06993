"""One stack, one tenant: names carry the tenant id and a Worker binds only its own data.

Cloudflare names are account-wide, so `clawdbot-<env>-<tenant>` is what keeps two tenants'
scripts, KV namespaces and databases apart; a Worker bound to another tenant's namespace would
serve (and could overwrite) that tenant's config and secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .. import constants as c
from .. import context
from ..common import tenant_context
from ..props import get_list, get_str, maps

DYNAMIC_RESOURCE = "pulumi-python:dynamic:Resource"
NAME_FIELDS: Mapping[str, str] = {
    c.SCRIPT: "scriptName",
    c.KV_NAMESPACE: "title",
    c.D1_DATABASE: "name",
    c.CRON_TRIGGER: "scriptName",
    c.ROUTE: "script",
    c.CUSTOM_DOMAIN: "service",
}
"""The account-wide name of each tenant resource (what Cloudflare sees)."""
TENANT_TYPES = c.CLOUDFLARE_TYPES | {c.RANDOM_BYTES, c.TENANT_EDGE, DYNAMIC_RESOURCE}


def expected_name(tenant: str, environment: str | None) -> str:
    return f"{c.NAME_PREFIX}-{environment or '<env>'}-{tenant}"


ENVIRONMENT_PATTERN = "[a-z][a-z0-9]*"
"""An environment name (orchestrator.core.model.Environment): no hyphen, so `clawdbot-<env>-<tenant>` splits
one way only and tenant `acme` cannot claim `clawdbot-prod-eu-acme` (tenant `eu-acme`'s name)."""


def is_tenant_name(value: str, tenant: str, environment: str | None) -> bool:
    if environment:
        return value == f"{c.NAME_PREFIX}-{environment}-{tenant}"
    return re.fullmatch(rf"{c.NAME_PREFIX}-{ENVIRONMENT_PATTERN}-{re.escape(tenant)}", value) is not None


def tenant_resource_naming_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in TENANT_TYPES:
        return
    ctx = tenant_context(args)
    tenant = ctx.tenant_id
    if tenant is None:
        args.not_applicable("no tenant id: not a prod.<tenant> stack and no clawdbot:tenant config")
        return
    if args.resource_type == c.TENANT_EDGE:
        if args.name != tenant:
            report_violation(f"TenantEdge is named {args.name}; in stack of {ctx.label()} name it {tenant}.", None)
    elif not args.name.startswith(tenant + "-"):
        report_violation(
            f"Resource {args.name} in the stack of {ctx.label()} must be named {tenant}-<role> "
            "(create it inside TenantEdge, which prefixes its children).",
            None,
        )
    field = NAME_FIELDS.get(args.resource_type)
    value = get_str(args.props, field) if field else None
    if field and value is not None and not is_tenant_name(value, tenant, ctx.environment):
        report_violation(
            f"{args.name}: {field} {value!r} does not belong to {ctx.label()}; "
            f"use {expected_name(tenant, ctx.environment)!r}.",
            None,
        )


tenant_resource_naming = ResourceValidationPolicy(
    name="tenant-resource-naming",
    description="Checks that every tenant resource carries the tenant id in its Pulumi and Cloudflare names.",
    validate=tenant_resource_naming_validator,
    config_schema=PolicyConfigSchema(properties=dict(context.CONTEXT_SCHEMA)),
)


def _ids(resources: list[PolicyResource], kind: str, *keys: str) -> dict[str, PolicyResource] | None:
    """Id -> resource for `kind`, or None when some resource of that kind shows no id.

    Ids are outputs: the engine includes them after an `up`; a run that cannot see them must
    not report every binding as foreign.
    """
    found: dict[str, PolicyResource] = {}
    for resource in resources:
        if resource.resource_type != kind:
            continue
        ids = [v for v in (get_str(resource.props, key) for key in keys) if v]
        if not ids:
            return None
        found.update(dict.fromkeys(ids, resource))
    return found


def _owner_name(resource: PolicyResource) -> str:
    return get_str(resource.props, NAME_FIELDS[resource.resource_type]) or resource.name


def _check_binding_targets(
    script: PolicyResource,
    ctx: context.TenantContext,
    tenant: str,
    targets: Mapping[str, tuple[str, dict[str, PolicyResource] | None]],
    report_violation: ReportViolation,
) -> None:
    name = get_str(script.props, "scriptName") or script.name
    for binding in maps(get_list(script.props, "bindings")):
        kind, bname = get_str(binding, "type") or "", get_str(binding, "name") or "?"
        if kind not in targets:
            continue
        key, owned = targets[kind]
        if owned is None:
            continue
        target_id = get_str(binding, key) or get_str(binding, "databaseId")
        owner = owned.get(target_id or "")
        if owner is None:
            report_violation(
                f"Worker {name}: {kind} binding {bname} points at {target_id or 'nothing'}, which this "
                f"stack does not manage; bind only {ctx.label()}'s own resources.",
                script.urn,
            )
        elif not is_tenant_name(_owner_name(owner), tenant, ctx.environment):
            report_violation(
                f"Worker {name}: {kind} binding {bname} points at {_owner_name(owner)}, which is not {ctx.label()}'s.",
                script.urn,
            )


def _check_dependencies(
    script: PolicyResource, ctx: context.TenantContext, tenant: str, report_violation: ReportViolation
) -> None:
    deps = list(script.dependencies) + [d for ds in script.property_dependencies.values() for d in ds]
    seen: set[str] = set()
    for dep in deps:
        if dep.urn in seen or dep.resource_type not in (c.KV_NAMESPACE, c.D1_DATABASE):
            continue
        seen.add(dep.urn)
        if not is_tenant_name(_owner_name(dep), tenant, ctx.environment):
            report_violation(
                f"Worker {script.name} depends on {_owner_name(dep)}, which is not {ctx.label()}'s.", script.urn
            )


def tenant_isolation_validator(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = list(args.resources)
    edges = [r for r in resources if r.resource_type == c.TENANT_EDGE]
    ctx = context.resolve(
        args.get_config(), urns=[r.urn for r in resources[:1]], component_name=edges[0].name if edges else None
    )
    tenant = ctx.tenant_id
    if tenant is None:
        args.not_applicable("no tenant id: not a prod.<tenant> stack and no clawdbot:tenant config")
        return
    if len(edges) > 1:
        names = ", ".join(sorted(e.name for e in edges))
        report_violation(f"Stack holds {len(edges)} TenantEdge components ({names}); one tenant per stack.", None)
    for edge in edges:
        if edge.name != tenant:
            report_violation(f"TenantEdge {edge.name} sits in the stack of {ctx.label()}.", edge.urn)
    scripts = [r for r in resources if r.resource_type == c.SCRIPT]
    for script in scripts:
        _check_tenant_binding(script, ctx, tenant, report_violation)
        _check_dependencies(script, ctx, tenant, report_violation)
    # Ids are read last: in a preview of a new stack they are unknown, and reading one ends
    # this policy's run (as in the real analyzer) after the checks above have reported.
    targets = {
        "kv_namespace": ("namespaceId", _ids(resources, c.KV_NAMESPACE, "id")),
        "d1": ("id", _ids(resources, c.D1_DATABASE, "id", "uuid")),
    }
    for script in scripts:
        _check_binding_targets(script, ctx, tenant, targets, report_violation)


def _check_tenant_binding(
    script: PolicyResource, ctx: context.TenantContext, tenant: str, report_violation: ReportViolation
) -> None:
    name = get_str(script.props, "scriptName") or script.name
    for binding in maps(get_list(script.props, "bindings")):
        if get_str(binding, "name") != c.TENANT_ID_BINDING:
            continue
        if get_str(binding, "type") != "plain_text" or get_str(binding, "text") != tenant:
            report_violation(
                f"Worker {name}: {c.TENANT_ID_BINDING} must be a plain_text binding holding {tenant!r} "
                f"for {ctx.label()}.",
                script.urn,
            )


tenant_isolation = StackValidationPolicy(
    name="tenant-isolation",
    description="Checks that a stack serves one tenant and its Workers bind only that tenant's KV and D1.",
    validate=tenant_isolation_validator,
    config_schema=PolicyConfigSchema(properties=dict(context.CONTEXT_SCHEMA)),
)
