"""Which tenant a stack belongs to, and its zone, as far as a policy can know.

There is no TenantSpec inside the analyzer, so each value is taken from the first source that
has it:

1. the policy's own config (`tenantId`, `environment`, `zoneId`, `zoneName`, `allowApexCatchAll`):
   `python -m orchestrator policy check` fills these from the validated TenantSpec, and an
   operator may set them with `pulumi preview --policy-pack-config`;
2. the stack's config `clawdbot:tenant`, which the engine passes to the pack process as the
   `PULUMI_CONFIG` environment variable (sdk/go/common/resource/plugin/analyzer_plugin.go,
   constructEnv) - so a plain `pulumi preview --policy-pack policies` needs no extra setup;
3. inference: the stack name `prod.<tenant>` (from the URN or `PULUMI_STACK`) and, for stack
   policies, the name of the `clawdbot:edge:TenantEdge` component.

The environment part of names (`clawdbot-<env>-<tenant>`) lives in the platform stack, so it is
known only from policy config; without it names are checked as `clawdbot-<any>-<tenant>`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from . import constants as c
from .hostnames import within_zone

CONTEXT_SCHEMA: dict[str, dict[str, Any]] = {
    "tenantId": {"type": "string", "description": "Tenant id; default: clawdbot:tenant.id or the stack name."},
    "environment": {"type": "string", "description": "Platform environment in names (clawdbot-<env>-<tenant>)."},
    "zoneId": {"type": "string", "description": "The tenant's zone id; default: clawdbot:tenant.zone.id."},
    "zoneName": {"type": "string", "description": "The tenant's zone apex; default: clawdbot:tenant.zone.name."},
    "allowApexCatchAll": {
        "type": "boolean",
        "description": "Allow a catch-all route on the zone apex; default: clawdbot:tenant.allow_apex_catch_all.",
    },
}
"""Config every tenant-aware policy accepts (the engine keeps config per policy)."""


@dataclass(frozen=True)
class TenantContext:
    tenant_id: str | None
    environment: str | None
    zone_id: str | None
    zone_name: str | None
    allow_apex_catch_all: bool

    def label(self) -> str:
        return f"tenant {self.tenant_id}" if self.tenant_id else "this stack"

    def contains_host(self, host: str) -> bool:
        return self.zone_name is not None and within_zone(host, self.zone_name)


def stack_from_urn(urn: str) -> str | None:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` -> `<stack>`."""
    prefix = "urn:pulumi:"
    if not urn.startswith(prefix):
        return None
    stack = urn[len(prefix) :].split("::", 1)[0]
    return stack or None


def tenant_from_stack(stack: str | None) -> str | None:
    if stack and stack.startswith(c.TENANT_STACK_PREFIX) and len(stack) > len(c.TENANT_STACK_PREFIX):
        return stack[len(c.TENANT_STACK_PREFIX) :]
    return None


@cache
def _parse_stack_tenant(raw_config: str) -> Mapping[str, Any]:
    try:
        config = json.loads(raw_config)
        tenant = config.get(c.STACK_CONFIG_TENANT_KEY) if isinstance(config, dict) else None
        # Structured config values reach the pack as JSON text.
        if isinstance(tenant, str):
            tenant = json.loads(tenant)
    except (json.JSONDecodeError, TypeError):
        return {}
    return tenant if isinstance(tenant, dict) else {}


def stack_config_tenant() -> Mapping[str, Any]:
    """`clawdbot:tenant` from the engine-provided stack config, or {} outside the analyzer."""
    raw = os.environ.get("PULUMI_CONFIG")
    return _parse_stack_tenant(raw) if raw else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def resolve(config: Mapping[str, Any], urns: Sequence[str] = (), component_name: str | None = None) -> TenantContext:
    stack_tenant = stack_config_tenant()
    raw_zone = stack_tenant.get("zone")
    zone: Mapping[str, Any] = raw_zone if isinstance(raw_zone, dict) else {}
    stacks = [stack_from_urn(urn) for urn in urns] + [os.environ.get("PULUMI_STACK")]
    inferred = next((t for t in map(tenant_from_stack, stacks) if t), None) or component_name
    allow = config.get("allowApexCatchAll")
    if not isinstance(allow, bool):
        allow = stack_tenant.get("allow_apex_catch_all") is True
    return TenantContext(
        tenant_id=_str(config.get("tenantId")) or _str(stack_tenant.get("id")) or inferred,
        environment=_str(config.get("environment")),
        zone_id=_str(config.get("zoneId")) or _str(zone.get("id")),
        zone_name=_str(config.get("zoneName")) or _str(zone.get("name")),
        allow_apex_catch_all=allow,
    )
