"""Routes and custom domains stay inside the tenant's own zone.

A route on somebody else's zone would hijack their traffic (Cloudflare routes by pattern), and a
catch-all on the zone apex sends every request on the zone - including paths the tenant serves
elsewhere - through the Worker, so it needs an explicit `allow_apex_catch_all`. A stack that
declares another tenant's zone (or a zone nesting with it) passes these checks by construction;
`hostname-ownership` (rules/ownership.py) refuses it against the whole fleet.
"""

from __future__ import annotations

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .. import constants as c
from ..common import tenant_context
from ..context import CONTEXT_SCHEMA, TenantContext
from ..props import get_str

_HOW = "set clawdbot:tenant.zone (or the policy config zoneId/zoneName)"


def route_host(pattern: str) -> str:
    return pattern.split("/", 1)[0]


def _bare(host: str) -> str:
    """`*.shop.acme.example.com` / `*acme.example.com` -> the concrete host part."""
    return host.removeprefix("*").removeprefix(".")


def _check_route(args: ResourceValidationArgs, ctx: TenantContext, report_violation: ReportViolation) -> None:
    pattern = get_str(args.props, "pattern") or ""
    zone_id = get_str(args.props, "zoneId")
    if ctx.zone_id and zone_id != ctx.zone_id:
        report_violation(
            f"Route {args.name} ({pattern}) is on zone {zone_id}, not {ctx.label()}'s zone {ctx.zone_id}.", None
        )
    if not ctx.contains_host(_bare(route_host(pattern))):
        report_violation(
            f"Route {args.name}: pattern {pattern!r} is outside {ctx.label()}'s zone {ctx.zone_name}; "
            "use a host inside the zone.",
            None,
        )


def _check_domain(args: ResourceValidationArgs, ctx: TenantContext, report_violation: ReportViolation) -> None:
    hostname = get_str(args.props, "hostname") or ""
    if not ctx.contains_host(hostname):
        report_violation(
            f"Custom domain {args.name}: {hostname!r} is outside {ctx.label()}'s zone {ctx.zone_name}.", None
        )
    zone_name, zone_id = get_str(args.props, "zoneName"), get_str(args.props, "zoneId")
    if zone_name is not None and zone_name != ctx.zone_name:
        report_violation(f"Custom domain {args.name} names zone {zone_name}, not {ctx.zone_name}.", None)
    if zone_id is not None and ctx.zone_id and zone_id != ctx.zone_id:
        report_violation(f"Custom domain {args.name} is on zone {zone_id}, not {ctx.zone_id}.", None)


def routes_in_tenant_zone_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in (c.ROUTE, c.CUSTOM_DOMAIN):
        return
    ctx = tenant_context(args)
    if ctx.zone_name is None:
        report_violation(f"{args.name}: the zone of {ctx.label()} is unknown, so it cannot be checked; {_HOW}.", None)
        return
    if args.resource_type == c.ROUTE:
        _check_route(args, ctx, report_violation)
    else:
        _check_domain(args, ctx, report_violation)


routes_in_tenant_zone = ResourceValidationPolicy(
    name="routes-in-tenant-zone",
    description="Checks that Worker routes and custom domains lie inside the tenant's own zone.",
    validate=routes_in_tenant_zone_validator,
    config_schema=PolicyConfigSchema(properties=dict(CONTEXT_SCHEMA)),
)


def is_apex_catch_all(pattern: str, zone_name: str) -> bool:
    host, _, path = pattern.partition("/")
    return host in (zone_name, "*" + zone_name) and path in ("*", "")


def no_apex_catch_all_route_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != c.ROUTE:
        return
    ctx = tenant_context(args)
    pattern = get_str(args.props, "pattern") or ""
    if ctx.zone_name and not ctx.allow_apex_catch_all and is_apex_catch_all(pattern, ctx.zone_name):
        report_violation(
            f"Route {args.name}: {pattern!r} catches every request on the apex of zone {ctx.zone_name}; "
            "narrow it to a host or path, or set clawdbot:tenant.allow_apex_catch_all: true.",
            None,
        )


no_apex_catch_all_route = ResourceValidationPolicy(
    name="no-apex-catch-all-route",
    description="Prohibits a catch-all route on the zone apex unless the tenant config allows it.",
    validate=no_apex_catch_all_route_validator,
    config_schema=PolicyConfigSchema(properties=dict(CONTEXT_SCHEMA)),
)
