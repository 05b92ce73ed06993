"""The policy analyzer, emulated: registered resources handed to the pack's rules as the engine hands them.

As pulumi_policy 1.21 does (`_PolicyAnalyzerServicer.Analyze` / `AnalyzeStack`):

- props travel as a protobuf Struct, so names are the engine's camelCase, secrets are unwrapped,
  numbers become floats, and preview unknowns become the engine's unknown sentinel behind the
  `unknown_checking_proxy`; a rule that reads one is skipped with an advisory note;
- `args.not_applicable()` skips a policy for that resource.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from inspect import isawaitable
from typing import Any, Protocol, cast

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties, serialize_properties
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from orchestrator.offline.errors import PolicyRunError
from orchestrator.offline.policy_pack import Pack, load_pack, reconcile_config, struct_round_trip
from orchestrator.offline.session import UNKNOWN


class ResourceLike(Protocol):
    """What the runner needs of `orchestrator.offline.session.RegisteredResource`."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def urn(self) -> str: ...
    @property
    def parent_urn(self) -> str | None: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def protect(self) -> bool: ...
    @property
    def id(self) -> str | None: ...
    @property
    def dependencies(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class StaticResource:
    """A resource given as data (a fixture, or rows from `pulumi stack export`), not from a run."""

    type: str
    name: str
    urn: str
    parent_urn: str | None
    inputs: Mapping[str, Any]
    protect: bool = False
    id: str | None = None
    """Provider id; stack policies see it as the `id` prop, as after an `up`."""
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on (explicit depends_on and through its inputs)."""


def resources_from_json(rows: Iterable[Mapping[str, Any]]) -> list[StaticResource]:
    """`[{type, name, urn, parent_urn?, inputs, protect?, id?, dependencies?}]` -> resources the runner accepts."""
    resources = []
    for index, row in enumerate(rows):
        try:
            resources.append(
                StaticResource(
                    type=str(row["type"]),
                    name=str(row["name"]),
                    urn=str(row["urn"]),
                    parent_urn=row.get("parent_urn"),
                    inputs=dict(row.get("inputs") or {}),
                    protect=bool(row.get("protect", False)),
                    id=row.get("id"),
                    dependencies=tuple(str(urn) for urn in row.get("dependencies") or ()),
                )
            )
        except KeyError as exc:
            raise PolicyRunError(f"resource #{index}: missing {exc.args[0]!r}") from None
    return resources


@dataclass(frozen=True)
class Violation:
    stack: str
    policy: str
    enforcement: str
    """`mandatory` or `advisory` (what the CLI prints in brackets)."""
    urn: str
    """Resource at fault; empty when the violation is about the whole stack."""
    message: str

    @property
    def mandatory(self) -> bool:
        return self.enforcement == EnforcementLevel.MANDATORY.value

    def line(self) -> str:
        return f"[{self.enforcement}]  {self.policy}  ({self.urn or 'stack ' + self.stack})  {self.message}"


def _replace_unknowns(value: Any) -> Any:
    if value is UNKNOWN:
        # The engine marshals every unknown as the string sentinel (KeepUnknowns).
        return UNKNOWN_STRING_VALUE
    if isinstance(value, Mapping):
        return {k: _replace_unknowns(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_unknowns(v) for v in value]
    return value


def analyzer_props(resource: ResourceLike, extra: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """The resource's props exactly as the analyzer would see them."""
    plain = _replace_unknowns({**resource.inputs, **(extra or {})})
    try:
        wire = struct_round_trip(serialize_properties(plain))
    except (TypeError, ValueError) as exc:
        raise PolicyRunError(f"resource {resource.urn}: props cannot cross the analyzer wire ({exc})") from None
    return cast(Mapping[str, Any], unknown_checking_proxy(deserialize_properties(wire)))


def _options(resource: ResourceLike) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        bool(resource.protect),
        [],
        getattr(resource, "delete_before_replace", None),
        [],
        PolicyCustomTimeouts(0, 0, 0),
        list(getattr(resource, "additional_secret_outputs", ())),
        resource.parent_urn,
    )


@dataclass
class AnalyzerRun:
    pack: Pack
    stack: str
    context: Mapping[str, Any]
    overrides: Mapping[str, Mapping[str, Any]]
    violations: list[Violation] = field(default_factory=list)

    def level(self, policy: Policy, override: EnforcementLevel | None) -> EnforcementLevel:
        level = override or policy.enforcement_level or self.pack.enforcement
        # As the analyzer: a remediate level that still violates is reported as mandatory.
        return EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level

    def reporter(self, policy: Policy, level: EnforcementLevel, default_urn: str) -> Callable[..., None]:
        def report(message: str, urn: str | None = None) -> None:
            self.violations.append(Violation(self.stack, policy.name, level.value, urn or default_urn, message))

        return report

    def call(self, policy: Policy, invoke: Callable[[], Any]) -> None:
        try:
            result = invoke()
            if isawaitable(result):
                loop = asyncio.new_event_loop()
                try:
                    loop.run_until_complete(result)
                finally:
                    loop.close()
        except UnknownValueError as exc:
            self.violations.append(
                Violation(
                    self.stack,
                    policy.name,
                    EnforcementLevel.ADVISORY.value,
                    "",
                    f"can't run policy '{policy.name}' from policy pack '{self.pack.name}@v{self.pack.version}' "
                    f"during preview: {exc.message}",
                )
            )
        except _NotApplicableError:
            pass

    def resource_policies(self, resources: Sequence[ResourceLike]) -> None:
        # Each resource crosses the analyzer wire once, for every policy (no rule writes to its props).
        props: list[Mapping[str, Any]] | None = None
        for policy in self.pack.policies:
            if not isinstance(policy, ResourceValidationPolicy):
                continue
            override, config = reconcile_config(policy, self.context, self.overrides.get(policy.name))
            level = self.level(policy, override)
            if level == EnforcementLevel.DISABLED:
                continue
            if props is None:
                props = [analyzer_props(resource) for resource in resources]
            for resource, resource_props in zip(resources, props, strict=True):
                args = ResourceValidationArgs(
                    resource.type,
                    resource_props,
                    resource.urn,
                    resource.name,
                    _options(resource),
                    None,
                    config,
                )
                report = self.reporter(policy, level, resource.urn)
                self.call(policy, partial(policy.validate, args, report))

    def stack_policies(self, resources: Sequence[ResourceLike], only: Iterable[str] | None = None) -> None:
        wanted = set(only) if only is not None else None
        view: list[PolicyResource] | None = None
        for policy in self.pack.policies:
            if not isinstance(policy, StackValidationPolicy) or (wanted is not None and policy.name not in wanted):
                continue
            override, config = reconcile_config(policy, self.context, self.overrides.get(policy.name))
            level = self.level(policy, override)
            if level == EnforcementLevel.DISABLED:
                continue
            if view is None:
                view = policy_resources(resources)
            args = StackValidationArgs(view, config)
            report = self.reporter(policy, level, "")
            self.call(policy, partial(policy.validate, args, report))


def policy_resources(resources: Sequence[ResourceLike]) -> list[PolicyResource]:
    """Stack-validation view, linked as the analyzer links it (AnalyzeStack): props (with the id
    when the run knows it), parent, and dependencies resolved to the resources of this run (a URN
    outside it is dropped, as the engine drops one it was not sent). The mocks record no per-property
    dependencies, so `property_dependencies` stays empty; `dependencies` holds all of them."""
    result: list[PolicyResource] = []
    for resource in resources:
        extra = {"id": resource.id} if resource.id else None
        result.append(
            PolicyResource(
                resource.type,
                analyzer_props(resource, extra),
                resource.urn,
                resource.name,
                _options(resource),
                None,
                None,
                [],
                {},
            )
        )
    by_urn = {r.urn: r for r in result}
    for policy_resource, resource in zip(result, resources, strict=True):
        policy_resource.parent = by_urn.get(resource.parent_urn or "")
        policy_resource.dependencies = [by_urn[urn] for urn in dict.fromkeys(resource.dependencies) if urn in by_urn]
    return result


def evaluate(
    resources: Sequence[ResourceLike],
    *,
    stack: str,
    context: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    pack: Pack | None = None,
) -> list[Violation]:
    """Every violation the pack reports for one stack's resources (resource, then stack policies)."""
    run = AnalyzerRun(pack or load_pack(), stack, context or {}, overrides or {})
    run.resource_policies(resources)
    run.stack_policies(resources)
    return run.violations
