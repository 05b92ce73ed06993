"""Run the CrossGuard pack in-process, as `pulumi preview --policy-pack policies` would.

The Pulumi CLI is not needed: the program runs under the provider-faithful mocks
(`orchestrator.offline.session`), the pack is loaded by `orchestrator.offline.policy_pack`, and every
registered resource is handed to its rules the way the analyzer hands it over
(`orchestrator.offline.analyzer`).

One thing the analyzer cannot see across stacks but Cloudflare enforces per account is checked
here as well: KV titles unique over the whole fleet (same `kv-titles-unique` rule, all stacks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.config.ownership import OWNERSHIP_POLICY, fleet_policy_config
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec
from orchestrator.core.errors import ConfigError, EdgeError
from orchestrator.core.names import PLATFORM_STACK, is_tenant_stack
from orchestrator.offline.analyzer import (
    AnalyzerRun,
    ResourceLike,
    Violation,
    evaluate,
)
from orchestrator.offline.cloudflare_mock import FakeAccount
from orchestrator.offline.policy_pack import CROSS_STACK_POLICIES, load_pack, tenant_policy_config
from orchestrator.offline.session import deployed_platform, project_account, run_offline


@dataclass
class StackResult:
    stack: str
    resources: int = 0
    violations: list[Violation] = field(default_factory=list)
    error: str | None = None
    """The stack could not be evaluated (invalid config, provider refusal); counts as a failure."""

    @property
    def failed(self) -> bool:
        return self.error is not None or any(v.mandatory for v in self.violations)


OfflineRunner = Callable[[Path, str, bool], Sequence[ResourceLike]]


def offline_runner(project_dir: Path) -> OfflineRunner:
    """Runs stacks of `project_dir` under the mocks; the zones of every tenant stack file are read once, here.

    Each run gets its own account holding those zones: the account records what a run claims.
    """
    zones = project_account(project_dir).zones

    def run(project_dir: Path, stack: str, preview: bool) -> Sequence[ResourceLike]:
        account = FakeAccount(zones=dict(zones))
        if stack != PLATFORM_STACK:
            account = deployed_platform(project_dir, account)
        return run_offline(project_dir, stack, preview=preview, account=account).resources

    return run


def platform_environment(project_dir: Path) -> str | None:
    try:
        return load_platform_spec(project_dir).environment
    except ConfigError:
        return None


@dataclass(frozen=True)
class FleetFacts:
    """What every stack's check shares: the platform's environment and the registry's hostnames."""

    environment: str | None
    hostnames: Mapping[str, Any]
    """`hostname-ownership`'s `fleet` config (what `policy fleet-config` prints)."""

    @classmethod
    def read(cls, project_dir: Path) -> FleetFacts:
        return cls(platform_environment(project_dir), fleet_policy_config(project_dir)[OWNERSHIP_POLICY])


def stack_context(project_dir: Path, stack: str, fleet: FleetFacts) -> dict[str, Any]:
    """Tenant id, zone, environment (the platform stack's) and the fleet's hostnames for `stack`."""
    if not is_tenant_stack(stack):
        return {"environment": fleet.environment} if fleet.environment else {}
    spec = load_tenant_spec(project_dir, stack)
    context = tenant_policy_config(spec.id, spec.zone.id, spec.zone.name, spec.allow_apex_catch_all, fleet.environment)
    return {**context, **fleet.hostnames}


def check_stack(
    project_dir: Path,
    stack: str,
    *,
    preview: bool = False,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    runner: OfflineRunner | None = None,
) -> tuple[StackResult, Sequence[ResourceLike]]:
    return _check_stack(
        project_dir,
        stack,
        FleetFacts.read(project_dir),
        preview=preview,
        overrides=overrides,
        runner=runner or offline_runner(project_dir),
    )


def _check_stack(
    project_dir: Path,
    stack: str,
    fleet: FleetFacts,
    *,
    preview: bool,
    overrides: Mapping[str, Mapping[str, Any]] | None,
    runner: OfflineRunner,
) -> tuple[StackResult, Sequence[ResourceLike]]:
    result = StackResult(stack)
    try:
        context = stack_context(project_dir, stack, fleet)
        resources = runner(project_dir, stack, preview)
    except EdgeError as exc:
        result.error = str(exc)
        return result, ()
    result.resources = len(resources)
    result.violations = evaluate(resources, stack=stack, context=context, overrides=overrides)
    return result, resources


def check_stacks(
    project_dir: Path,
    stacks: Sequence[str],
    *,
    preview: bool = False,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    runner: OfflineRunner | None = None,
) -> list[StackResult]:
    """Check each stack, then the account-wide rules over all of them together."""
    fleet = FleetFacts.read(project_dir)
    runner = runner or offline_runner(project_dir)
    results: list[StackResult] = []
    everything: list[ResourceLike] = []
    for stack in stacks:
        result, resources = _check_stack(project_dir, stack, fleet, preview=preview, overrides=overrides, runner=runner)
        results.append(result)
        everything.extend(resources)
    if len(stacks) > 1:
        _cross_stack(results, everything, overrides)
    return results


def _cross_stack(
    results: list[StackResult], resources: Sequence[ResourceLike], overrides: Mapping[str, Mapping[str, Any]] | None
) -> None:
    by_stack = {r.stack: r for r in results}
    run = AnalyzerRun(load_pack(), "(fleet)", {}, overrides or {})
    run.stack_policies(resources, only=CROSS_STACK_POLICIES)
    for violation in run.violations:
        stack = violation.urn.removeprefix("urn:pulumi:").split("::", 1)[0]
        owner = by_stack.get(stack)
        if owner is None or any(v.policy == violation.policy and v.urn == violation.urn for v in owner.violations):
            continue
        owner.violations.append(
            Violation(stack, violation.policy, violation.enforcement, violation.urn, violation.message)
        )
