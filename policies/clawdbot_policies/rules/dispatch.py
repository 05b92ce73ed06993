"""Dispatch mode (Workers for Platforms): the namespace cannot be lost, user Workers are tagged right.

Deleting or renaming the namespace deletes every user Worker in it, so it must be protected. A user
Worker's tags are how offboarding finds what is left of a tenant: at most 8, no ',' or '&', and
`tenant-<id>` among them. Trusted mode cannot be set through IaC (the namespace's `trusted_workers`
is output-only in pulumi-cloudflare 6.23.1), so there is nothing to refuse there.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .. import constants as c
from ..props import get_list, get_str


def dispatch_namespace_protected_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != c.DISPATCH_NAMESPACE or args.opts.protect:
        return
    name = get_str(args.props, "name") or args.name
    report_violation(
        f"Dispatch namespace {name} is not protected; create it with ResourceOptions(protect=True) - "
        "deleting or renaming it deletes every tenant's user Worker.",
        None,
    )


dispatch_namespace_protected = ResourceValidationPolicy(
    name="dispatch-namespace-protected",
    description="Checks that the Workers for Platforms dispatch namespace is protected against deletion.",
    validate=dispatch_namespace_protected_validator,
)


def user_worker_tags_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != c.DYNAMIC or get_str(args.props, "namespace") is None:
        return
    script = get_str(args.props, "script_name") or args.name
    tags = [str(t) for t in get_list(args.props, "tags")]
    if len(tags) > c.MAX_SCRIPT_TAGS:
        report_violation(f"User Worker {script} has {len(tags)} tags; Workers for Platforms allows 8.", None)
    bad = [t for t in tags if not t or "," in t or "&" in t]
    if bad:
        report_violation(f"User Worker {script}: tags {bad} are empty or contain ',' or '&'.", None)
    tenant = get_str(args.props, "tenant")
    if tenant and f"tenant-{tenant}" not in tags:
        report_violation(f"User Worker {script} lacks the tag tenant-{tenant}, which offboarding sweeps by.", None)


user_worker_tags = ResourceValidationPolicy(
    name="user-worker-tags",
    description="Checks that every user Worker has at most 8 valid tags including tenant-<id>.",
    validate=user_worker_tags_validator,
)
