"""Data that cannot be recreated must not be deleted by a refactor, and KV titles must not clash.

D1 `name`/`primary_location_hint` changes force replacement (delete + create), which loses the
tenant's data; `protect` turns that into an error. The analyzer sees `protect` but not
`retain_on_delete` (pulumi_policy 1.21 PolicyResourceOptions has no such field), so protect is
what is required. KV titles are unique per account (API error 10014).
"""

from __future__ import annotations

from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .. import constants as c
from ..props import get_str


def d1_protected_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != c.D1_DATABASE or args.opts.protect:
        return
    name = get_str(args.props, "name") or args.name
    report_violation(
        f"D1 database {name} ({args.name}) is not protected; create it with "
        "ResourceOptions(protect=True) - a replacement or delete would destroy the tenant's data.",
        None,
    )


d1_protected = ResourceValidationPolicy(
    name="d1-protected",
    description="Checks that every D1 database is protected against deletion and replacement.",
    validate=d1_protected_validator,
)


def kv_titles_unique_validator(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    first: dict[str, str] = {}
    for resource in args.resources:
        if resource.resource_type != c.KV_NAMESPACE:
            continue
        title = get_str(resource.props, "title")
        if title is None:
            continue
        if title in first:
            report_violation(
                f"KV namespace title {title!r} is already used by {first[title]}; titles are unique per "
                "Cloudflare account (error 10014) - give each namespace clawdbot-<env>-<tenant>.",
                resource.urn,
            )
        else:
            first[title] = resource.urn


kv_titles_unique = StackValidationPolicy(
    name="kv-titles-unique",
    description="Checks that no two KV namespaces share a title.",
    validate=kv_titles_unique_validator,
)
