"""Run the CrossGuard pack in-process, as `pulumi preview --policy-pack policies` would.

The Pulumi CLI is not needed: the program runs under the provider-faithful mocks
(`orchestrator.offline.session`), and every registered resource is handed to the pack's own rules the
way the analyzer hands it over (pulumi_policy 1.21, `_PolicyAnalyzerServicer.Analyze` /
`AnalyzeStack`):

- props travel as a protobuf Struct, so names are the engine's camelCase, secrets are unwrapped,
  numbers become floats, and preview unknowns become the engine's unknown sentinel behind the
  `unknown_checking_proxy`; a rule that reads one is skipped with an advisory note;
- each policy gets its own config: schema defaults, then what this runner knows from the stack
  (tenant id, zone, environment), then caller overrides (`enforcementLevel` included);
- `args.not_applicable()` skips a policy for that resource.

One thing the analyzer cannot see across stacks but Cloudflare enforces per account is checked
here as well: KV titles unique over the whole fleet (same `kv-titles-unique` rule, all stacks).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from inspect import isawaitable
from pathlib import Path
from typing import Any, Protocol, cast

import yaml
from google.protobuf import json_format, struct_pb2
from jsonschema import Draft7Validator
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

from orchestrator.config.ownership import OWNERSHIP_POLICY, fleet_policy_config
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec
from orchestrator.core.errors import ConfigError, EdgeError, SetupError
from orchestrator.core.names import PLATFORM_STACK, is_tenant_stack
from orchestrator.core.pack import PACK_DIR, pack_module
from orchestrator.offline.cloudflare_mock import FakeAccount
from orchestrator.offline.session import UNKNOWN, deployed_platform, project_account, run_offline

CROSS_STACK_POLICIES = ("kv-titles-unique",)
"""Stack policies also run over the union of all stacks: Cloudflare enforces them per account."""


class PolicyRunError(EdgeError):
    """The pack could not be loaded or run (names the pack path, stack or resource)."""


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
class Pack:
    name: str
    version: str
    policies: tuple[Policy, ...]
    enforcement: EnforcementLevel

    def policy(self, name: str) -> Policy:
        return next(p for p in self.policies if p.name == name)


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


@cache
def load_pack(pack_dir: Path = PACK_DIR) -> Pack:
    """The pack's policies, its name (set in code) and version (PulumiPolicy.yaml, as the CLI reports it)."""
    try:
        meta = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyRunError(
            f"policy pack {pack_dir}: cannot read PulumiPolicy.yaml ({exc.__class__.__name__})"
        ) from None
    try:
        module = pack_module("pack", pack_dir)
    except SetupError as exc:
        raise PolicyRunError(str(exc)) from None
    return Pack(
        name=module.PACK_NAME,
        version=str(meta.get("version", "0.0.1")),
        policies=tuple(module.POLICIES),
        enforcement=module.PACK_ENFORCEMENT,
    )


def tenant_policy_config(
    tenant_id: str, zone_id: str, zone_name: str, allow_apex_catch_all: bool, environment: str | None
) -> dict[str, Any]:
    """What this runner tells every tenant-aware policy (the analyzer reads it from PULUMI_CONFIG)."""
    values: dict[str, Any] = {
        "tenantId": tenant_id,
        "zoneId": zone_id,
        "zoneName": zone_name,
        "allowApexCatchAll": allow_apex_catch_all,
    }
    if environment:
        values["environment"] = environment
    return values


def _struct_round_trip(value: Mapping[str, Any]) -> dict[str, Any]:
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    result: dict[str, Any] = json_format.MessageToDict(struct)
    return result


def reconcile_config(
    policy: Policy, context: Mapping[str, Any], overrides: Mapping[str, Any] | None, source: str = "policy config"
) -> tuple[EnforcementLevel | None, dict[str, Any]]:
    """Defaults from the schema, then the stack context, then overrides (engine config.go order),
    validated against the policy's schema as the engine validates the result."""
    schema = policy.config_schema.properties if policy.config_schema else {}
    props = {k: v["default"] for k, v in schema.items() if "default" in v}
    props.update({k: v for k, v in context.items() if k in schema})
    level: EnforcementLevel | None = None
    for key, value in (overrides or {}).items():
        if key == "enforcementLevel":
            level = EnforcementLevel(value)
        elif key in schema:
            props[key] = value
        else:
            known = f"known: {', '.join(schema)}" if schema else "it takes none"
            raise PolicyRunError(f"{source}: {policy.name}: unknown config property {key!r} ({known})")
    validate_config(policy, props, source)
    return level, _struct_round_trip(props)


MAX_REASON = 160
"""Longest schema complaint quoted in an error (jsonschema echoes the value it refused)."""


@cache
def config_validator(policy: Policy) -> Draft7Validator:
    """The schema the engine checks a policy's reconciled config against: pulumi/pulumi
    pkg/resource/analyzer/config.go `convertSchema` wraps the policy's properties and required
    list in `{"type": "object", ...}`, and `validatePolicyConfig` runs gojsonschema over it."""
    schema = policy.config_schema
    document: dict[str, Any] = {"type": "object"}
    if schema is not None and schema.properties:
        document["properties"] = schema.properties
    if schema is not None and schema.required:
        document["required"] = list(schema.required)
    Draft7Validator.check_schema(document)
    return Draft7Validator(document)


def validate_config(policy: Policy, props: Mapping[str, Any], source: str) -> None:
    """Refuse config the engine would refuse, in one line naming the policy and the field."""
    errors = sorted(config_validator(policy).iter_errors(dict(props)), key=lambda e: [str(p) for p in e.path])
    if not errors:
        return
    first = errors[0]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.path).lstrip(".") or "(config)"
    reason = " ".join(first.message.split())
    reason = reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise PolicyRunError(f"{source}: {policy.name}: {field}: {reason}{more}")


def parse_policy_config(document: Any, pack: Pack, source: str = "policy config") -> dict[str, dict[str, Any]]:
    """Per-policy overrides from a `pulumi preview --policy-pack-config` style JSON document.

    `{"<policy>": "<level>" | {"enforcementLevel": "<level>", "<property>": value, ...}}`, plus
    `"all": "<level>"` for every policy that does not set its own level. Policy names, levels,
    property names and each policy's config schema (jsonschema, as the engine) are checked here,
    so a typo or an out-of-range value fails before anything runs.
    """
    if not isinstance(document, dict):
        raise PolicyRunError(f"{source}: expected a JSON object of policy name -> level or settings")
    names = {p.name: p for p in pack.policies}
    overrides: dict[str, dict[str, Any]] = {}
    pack_level: Any = None
    for name, value in document.items():
        if name == "all":
            pack_level = value.get("enforcementLevel") if isinstance(value, dict) else value
            continue
        policy = names.get(name)
        if policy is None:
            raise PolicyRunError(f"{source}: no policy {name!r} in pack {pack.name} (known: {', '.join(names)})")
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        if not isinstance(value, dict):
            raise PolicyRunError(f"{source}: {name} must be an enforcement level or an object of settings")
        overrides[name] = dict(value)
    for name in names:
        entry = overrides.setdefault(name, {})
        if pack_level is not None:
            entry.setdefault("enforcementLevel", pack_level)
        try:
            reconcile_config(names[name], {}, entry, source)
        except ValueError:
            raise PolicyRunError(
                f"{source}: {name}: enforcementLevel {entry.get('enforcementLevel')!r} is not one of "
                f"{', '.join(level.value for level in EnforcementLevel)}"
            ) from None
    return {name: entry for name, entry in overrides.items() if entry}


def load_policy_config(path: Path, pack: Pack | None = None) -> dict[str, dict[str, Any]]:
    """`parse_policy_config` of a JSON file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyRunError(f"policy config {path}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise PolicyRunError(f"policy config {path}: not JSON ({exc})") from None
    return parse_policy_config(document, pack or load_pack(), f"policy config {path}")


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
        wire = _struct_round_trip(serialize_properties(plain))
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
class _Run:
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
    run = _Run(pack or load_pack(), stack, context or {}, overrides or {})
    run.resource_policies(resources)
    run.stack_policies(resources)
    return run.violations


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
    run = _Run(load_pack(), "(fleet)", {}, overrides or {})
    run.stack_policies(resources, only=CROSS_STACK_POLICIES)
    for violation in run.violations:
        stack = violation.urn.removeprefix("urn:pulumi:").split("::", 1)[0]
        owner = by_stack.get(stack)
        if owner is None or any(v.policy == violation.policy and v.urn == violation.urn for v in owner.violations):
            continue
        owner.violations.append(
            Violation(stack, violation.policy, violation.enforcement, violation.urn, violation.message)
        )
