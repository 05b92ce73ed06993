"""The CrossGuard pack (policies/) loaded in-process, and each policy's config as the analyzer builds it.

Config per policy: schema defaults, then what the runner knows from the stack (tenant id, zone,
environment), then caller overrides (`enforcementLevel` included), checked against the policy's
own schema like `pulumi preview --policy-pack-config` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format, struct_pb2
from jsonschema import Draft7Validator
from pulumi_policy import (
    EnforcementLevel,
    Policy,
)

from orchestrator.core.errors import SetupError
from orchestrator.core.pack import PACK_DIR, pack_module
from orchestrator.offline.errors import PolicyRunError

CROSS_STACK_POLICIES = ("kv-titles-unique",)
"""Stack policies also run over the union of all stacks: Cloudflare enforces them per account."""


@dataclass(frozen=True)
class Pack:
    name: str
    version: str
    policies: tuple[Policy, ...]
    enforcement: EnforcementLevel

    def policy(self, name: str) -> Policy:
        return next(p for p in self.policies if p.name == name)


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


def struct_round_trip(value: Mapping[str, Any]) -> dict[str, Any]:
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
    return level, struct_round_trip(props)


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
