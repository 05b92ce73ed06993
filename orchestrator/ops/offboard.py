"""Offboarding in dispatch mode: sweep a departed tenant's leftover user Workers by tag.

`destroy` deletes the tenant's user Worker and its routing entries through Pulumi. What Pulumi no
longer tracks (a script under an earlier name left by an interrupted rename, a hand upload) still
carries the tag `tenant-<id>` (`orchestrator.core.dispatch.script_tags`), and Cloudflare lists and
deletes namespace scripts by tag: `GET|DELETE …/scripts?tags=<tag>:yes` (cf-docs
workers-for-platforms/configuration/tags.mdx; `components.wfp_api.NamespaceApi`).

Only `tenant-<id>` tags are swept, and only once that tenant's stack holds no live resource: every
other tag (`plan-…`, `env-…`, `fleet-…`) is shared by live tenants, and a tenant's own tag is on its
live Worker until `destroy` ran. Calls go through the throttling proxy under the fleet lease, so a
sweep spends the one API budget like any fleet run; only script names are printed and audited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from components.wfp_api import NamespaceApi, NamespaceApiError
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec, project_name
from orchestrator.core.dispatch import isolation_of, namespace_name
from orchestrator.core.errors import ConfigError, EdgeError
from orchestrator.core.model import is_tenant_id
from orchestrator.core.names import tenant_stack
from orchestrator.engine.budget import ThrottleConfig
from orchestrator.engine.kept import leftovers
from orchestrator.engine.locks import fleet_lease
from orchestrator.engine.state_store import state_of
from orchestrator.fleet.audit import AuditLog
from orchestrator.fleet.ports import Operation
from orchestrator.fleet.report import FleetReport, Result, TenantResult

TENANT_TAG_PREFIX = "tenant-"
"""The first of `script_tags`; tests/test_offboard.py holds the two equal."""


@dataclass(frozen=True)
class SweepResult:
    tag: str
    namespace: str
    scripts: tuple[str, ...]
    """The script names found with the tag (deleted unless `dry_run`)."""
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "namespace": self.namespace,
            "dry_run": self.dry_run,
            "scripts": list(self.scripts),
            "deleted": [] if self.dry_run else list(self.scripts),
        }

    def describe(self) -> str:
        names = ", ".join(self.scripts)
        if not self.scripts:
            return f"no script tagged {self.tag} in namespace {self.namespace}"
        verb = "would delete" if self.dry_run else "deleted"
        return f"{verb} {len(self.scripts)} scripts tagged {self.tag} in namespace {self.namespace}: {names}"


def tenant_tag(tenant: str) -> str:
    return f"{TENANT_TAG_PREFIX}{tenant}"


def sweepable_tenant(tag: str) -> str | None:
    """The tenant a `tenant-<id>` tag names, or None: no other tag may be swept (the door says why)."""
    tenant = tag.removeprefix(TENANT_TAG_PREFIX)
    return tenant if tag.startswith(TENANT_TAG_PREFIX) and is_tenant_id(tenant) else None


NOT_SWEEPABLE = (
    "only a tenant's own tag (tenant-<id>) can be swept; plan-, env- and fleet- tags are shared by live tenants"
)


def sweep(settings: Settings, tenant: str, *, dry_run: bool, base_url: str | None) -> SweepResult:
    """List (and unless `dry_run`, delete) the namespace scripts tagged `tenant-<tenant>`, then check.

    The caller holds the lease and gives the proxy's URL; refusal rules are `sweep_tag`'s.
    """
    platform = load_platform_spec(settings.project_dir)
    tag, namespace = tenant_tag(tenant), namespace_name(platform)
    # The URL goes to this client only: the process environment is every thread's (a fleet run's too).
    api = NamespaceApi(platform.account_id, namespace, tenant, endpoint=base_url)
    try:
        found = tuple(api.scripts_tagged(tag))
        if found and not dry_run:
            api.delete_tagged(tag)
            left = api.scripts_tagged(tag)
            if left:
                raise EdgeError(
                    f"tenant {tenant}: {len(left)} scripts still tagged {tag} after the sweep: {', '.join(left)}"
                )
    except NamespaceApiError as exc:
        raise EdgeError(str(exc)) from None
    return SweepResult(tag, namespace, found, dry_run)


def sweep_tag(settings: Settings, tag: str, *, dry_run: bool, holder: str, audit: AuditLog) -> SweepResult:
    """`tenants sweep --tag tenant-<id>`: refused while the tenant's stack holds live resources."""
    tenant = sweepable_tenant(tag)
    if tenant is None:
        raise ConfigError(f"tag {tag!r}: {NOT_SWEEPABLE}")
    stack = tenant_stack(tenant)
    live = leftovers(state_of(settings), project_name(settings.project_dir), stack).unprotected
    if live:
        raise EdgeError(
            f"tenant {tenant}: stack {stack} still holds {len(live)} resources (its live Worker carries {tag}): "
            f"run `python -m orchestrator destroy --tenant {tenant} --yes` first"
        )
    from orchestrator.ops.fleet_run import api_budget  # here: fleet_run calls `sweep_destroyed` of this module

    with (
        fleet_lease(settings.fleet_lease_file, holder=holder, command=f"tenants sweep --tag {tag}"),
        api_budget(ThrottleConfig.requests, True, settings.api_budget_key, settings.api_budget_share) as base_url,
    ):
        try:
            result = sweep(settings, tenant, dry_run=dry_run, base_url=base_url)
        except EdgeError as exc:
            audit.record(stack=stack, tenant=tenant, operation="sweep", result="failed", detail=str(exc))
            raise
    outcome = "dry-run" if dry_run else "ok"
    audit.record(stack=stack, tenant=tenant, operation="sweep", result=outcome, detail=result.describe())
    return result


def sweep_destroyed(settings: Settings, report: FleetReport, base_url: str | None, audit: AuditLog) -> FleetReport:
    """After `destroy`: sweep each destroyed dispatch-mode tenant's tag; a failed sweep fails the tenant.

    The stack is gone, so nothing live carries the tag any more; the tenant stays registered (its
    file is what says it was in dispatch mode) until `tenants remove`.
    """
    if report.operation != Operation.DESTROY.value:
        return report
    results: list[TenantResult] = []
    for result in report.results:
        if result.result is Result.OK and _in_dispatch_mode(settings, result.stack):
            result = _swept(settings, result, base_url, audit)
        results.append(result)
    return replace(report, results=tuple(results))


def _in_dispatch_mode(settings: Settings, stack: str) -> bool:
    try:
        spec = load_tenant_spec(settings.project_dir, stack)
        return isolation_of(spec, load_platform_spec(settings.project_dir)) == "dispatch"
    except ConfigError:
        return False  # not a file the program could have deployed in dispatch mode


def _swept(settings: Settings, result: TenantResult, base_url: str | None, audit: AuditLog) -> TenantResult:
    tenant = result.tenant
    try:
        swept = sweep(settings, tenant, dry_run=False, base_url=base_url)
    except EdgeError as exc:
        audit.record(stack=result.stack, tenant=tenant, operation="sweep", result="failed", detail=str(exc))
        command = f"python -m orchestrator tenants sweep --tag {tenant_tag(tenant)}"
        detail = _joined(result.detail, f"destroyed, but the sweep by tag failed: {exc}")
        return replace(result, result=Result.FAILED, detail=detail, advice=(*result.advice, f"then run `{command}`"))
    audit.record(stack=result.stack, tenant=tenant, operation="sweep", result="ok", detail=swept.describe())
    return replace(result, detail=_joined(result.detail, f"swept: {swept.describe()}")) if swept.scripts else result


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
