"""The Pulumi program: `__main__.py` for `pulumi up`, and the inline program of the fleet.

Reads the stack config once, validates it (nothing is registered on invalid config), renders the
bundle and hands it to the components. No business rules here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from components.platform import Platform, PlatformArgs
from components.tenant_edge import TenantEdge, TenantEdgeArgs
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import (
    NAMESPACE,
    PLATFORM_KEY,
    SECRETS_KEY,
    load_platform_spec,
    validate,
    validate_tenant,
)
from orchestrator.core import outputs
from orchestrator.core.contract import health_path
from orchestrator.core.errors import ConfigError
from orchestrator.core.model import PlatformSpec, fleet_prefix
from orchestrator.core.names import PLATFORM_STACK
from orchestrator.core.render import render_bundle

BASE_URL_KEY = "cloudflare:baseUrl"


def pulumi_program() -> None:
    """Entry point used by `__main__.py` and by the Automation API (inline program)."""
    run_program(Settings.from_env().project_dir)


def run_program(project_dir: Path) -> None:
    try:
        if pulumi.get_stack() == PLATFORM_STACK:
            _platform(
                validate(PlatformSpec, PLATFORM_STACK, PLATFORM_KEY, pulumi.Config(NAMESPACE).get_object("platform"))
            )
        else:
            _tenant(project_dir)
    except ConfigError as exc:
        # RunError prints the one-line message without a Python traceback.
        raise pulumi.RunError(str(exc)) from None


def _secret_values(stack: str) -> dict[str, pulumi.Output[str]]:
    """Secret config as Outputs marked secret at once; only the names are looked at in plaintext."""
    raw = pulumi.runtime.get_config(SECRETS_KEY)
    if raw is None:
        return {}
    values: Any = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(values, Mapping):
        raise ConfigError(f"stack {stack}: {SECRETS_KEY}: must be an object of NAME: <secret>")
    result: dict[str, pulumi.Output[str]] = {}
    for name, value in values.items():
        if not isinstance(value, str):
            raise ConfigError(f"stack {stack}: {SECRETS_KEY}.{name}: must be a string")
        result[name] = pulumi.Output.secret(value)
    return result


def _tenant(project_dir: Path) -> None:
    stack = pulumi.get_stack()
    if pulumi.runtime.get_config(BASE_URL_KEY) is not None:
        # A stack-level endpoint outranks CLOUDFLARE_BASE_URL and would bypass the fleet's
        # shared API budget (orchestrator/engine/throttle.py), so 429s would reach the provider.
        raise ConfigError(
            f"stack {stack}: {BASE_URL_KEY}: must not be set on a tenant stack; the fleet routes API calls "
            "through its throttling proxy with CLOUDFLARE_BASE_URL"
        )
    secrets = _secret_values(stack)
    spec = validate_tenant(stack, pulumi.Config(NAMESPACE).get_object("tenant"), secrets.keys())
    platform = load_platform_spec(project_dir)
    bundle = render_bundle(spec, platform)
    edge = TenantEdge(
        spec.id,
        TenantEdgeArgs(
            bundle=bundle,
            account_id=platform.account_id,
            zone_id=spec.zone.id,
            secrets=secrets,
            api_token=pulumi.Config("cloudflare").get_secret("apiToken"),
        ),
    )
    pulumi.export(outputs.SCRIPT_NAME, edge.script_name)
    pulumi.export(outputs.KV_NAMESPACE_ID, edge.kv_namespace_id)
    pulumi.export(outputs.D1_DATABASE_ID, edge.d1_database_id)
    pulumi.export(outputs.HOSTNAMES, list(bundle.hostnames))
    health_url = f"https://{bundle.health_host}{health_path()}" if bundle.health_host else None
    pulumi.export(outputs.HEALTH_URL, health_url)
    pulumi.export(outputs.BUNDLE_HASH, edge.bundle_hash)
    pulumi.export(outputs.CONFIG_VERSION, bundle.config_version)


def _platform(spec: PlatformSpec) -> None:
    platform = Platform(
        fleet_prefix(spec.environment),
        PlatformArgs(account_id=spec.account_id, environment=spec.environment),
    )
    pulumi.export(outputs.ACCOUNT_ID, spec.account_id)
    pulumi.export(outputs.ENVIRONMENT, spec.environment)
    pulumi.export(outputs.DISPATCH_NAMESPACE, platform.dispatch_namespace)
