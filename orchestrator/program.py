"""The Pulumi program: `__main__.py` for `pulumi up`, and the inline program of the fleet.

Reads the stack config once, validates it (nothing is registered on invalid config), renders the
bundle and hands it to the components. No business rules here.

What the program can see of secrets: the engine hands it every config value decrypted, and only
says which *top-level keys* are secret (`configSecretKeys`, `pulumi.runtime.is_config_secret`). A
key is secret when any value under it is `secure:` (go config/value.go, hasSecureValue), so a
plain-text value beside encrypted ones under `clawdbot:secrets` is invisible in the config; the
program therefore also reads its stack file from the project directory, as it reads the
platform stack's, and applies the same rules as `plan` (`tenant_config.check_stack_config`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pulumi
import pulumi.runtime.config as runtime_config

from components.platform import DispatchArgs, Platform, PlatformArgs
from components.tenant_edge import TenantEdge, TenantEdgeArgs
from components.user_worker import DispatchTarget
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import (
    PLATFORM_KEY,
    SECRETS_KEY,
    TENANT_KEY,
    check_known_keys,
    check_stack_config,
    engine_object,
    load_platform_spec,
    plaintext_secret,
    read_stack_config,
    secret_in_plain_config,
    validate,
    validate_tenant,
)
from orchestrator.core import outputs
from orchestrator.core.config_match import payload_text_identity
from orchestrator.core.contract import contract, health_path
from orchestrator.core.dispatch import dispatch_modules, dispatch_problems, namespace_name, platform_name
from orchestrator.core.errors import ConfigError
from orchestrator.core.model import PlatformSpec, TenantSpec, fleet_prefix
from orchestrator.core.names import PLATFORM_STACK, platform_reference, stack_file
from orchestrator.core.render import render_bundle

BASE_URL_KEY = "cloudflare:baseUrl"


def pulumi_program() -> None:
    """Entry point used by `__main__.py` and by the Automation API (inline program)."""
    run_program(Settings.from_env().project_dir)


def run_program(project_dir: Path) -> None:
    try:
        stack = pulumi.get_stack()
        check_known_keys(stack, _engine_keys())
        if stack == PLATFORM_STACK:
            _platform(validate(PlatformSpec, PLATFORM_STACK, PLATFORM_KEY, _plain_object(stack, PLATFORM_KEY)))
        else:
            _tenant(project_dir, stack)
    except ConfigError as exc:
        # RunError prints the one-line message without a Python traceback.
        raise pulumi.RunError(str(exc)) from None


def _engine_keys() -> Iterable[str]:
    """Every config key the engine handed over (set_all_config, or the PULUMI_CONFIG environment)."""
    return {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}


def _plain_object(stack: str, key: str) -> object:
    if pulumi.runtime.is_config_secret(key):
        raise secret_in_plain_config(stack, key)
    return engine_object(stack, key, pulumi.runtime.get_config(key))


def _secret_values(stack: str) -> dict[str, pulumi.Output[str]]:
    """Secret config as Outputs marked secret at once; only the names are looked at in plaintext."""
    values = engine_object(stack, SECRETS_KEY, pulumi.runtime.get_config(SECRETS_KEY))
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"stack {stack}: {SECRETS_KEY}: must be an object of NAME: <secret>")
    if values and not pulumi.runtime.is_config_secret(SECRETS_KEY):
        raise plaintext_secret(stack, sorted(values)[0])  # none of them is secure: the key is not secret
    result: dict[str, pulumi.Output[str]] = {}
    for name, value in values.items():
        if not isinstance(value, str):
            raise ConfigError(f"stack {stack}: {SECRETS_KEY}.{name}: must be a string")
        result[name] = pulumi.Output.secret(value)
    return result


def _tenant(project_dir: Path, stack: str) -> None:
    if pulumi.runtime.get_config(BASE_URL_KEY) is not None:
        # A stack-level endpoint outranks CLOUDFLARE_BASE_URL and would bypass the fleet's
        # shared API budget (orchestrator/engine/throttle.py), so 429s would reach the provider.
        raise ConfigError(
            f"stack {stack}: {BASE_URL_KEY}: must not be set on a tenant stack; the fleet routes API calls "
            "through its throttling proxy with CLOUDFLARE_BASE_URL"
        )
    if stack_file(project_dir, stack).is_file():
        check_stack_config(stack, read_stack_config(project_dir, stack))
    secrets = _secret_values(stack)
    spec = validate_tenant(stack, _plain_object(stack, TENANT_KEY), secrets.keys())
    platform = load_platform_spec(project_dir)
    for key, problem in dispatch_problems(spec, platform):
        raise ConfigError(f"stack {stack}: {TENANT_KEY}.{key}: {problem}")
    bundle = render_bundle(spec, platform)
    edge = TenantEdge(
        spec.id,
        TenantEdgeArgs(
            bundle=bundle,
            account_id=platform.account_id,
            zone_id=spec.zone.id,
            secrets=secrets,
            api_token=pulumi.Config("cloudflare").get_secret("apiToken"),
            dispatch=_dispatch_target(spec, platform) if bundle.isolation == "dispatch" else None,
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
    # What the fleet compares before the next `up` at the same version (the Worker's version_conflict).
    pulumi.export(outputs.CONFIG_IDENTITY, payload_text_identity(bundle.config_payload))


def _dispatch_target(spec: TenantSpec, platform: PlatformSpec) -> DispatchTarget:
    """Where a dispatch-mode tenant goes; only the routing KV id needs the platform's deployment."""
    reference = pulumi.StackReference(platform_reference(pulumi.get_project()))
    saas = platform.saas_zone
    return DispatchTarget(
        namespace=namespace_name(platform),
        routing_kv_id=reference.require_output(outputs.ROUTING_KV_ID),
        saas_zone_id=saas.id if saas else None,
        custom_hostnames=tuple(h for h in spec.hostnames() if saas and not saas.contains(h)),
    )


def _platform(spec: PlatformSpec) -> None:
    d = contract()["dispatch"]
    dispatch = (
        DispatchArgs(
            namespace=namespace_name(spec),
            dispatcher_name=platform_name(spec, "dispatcher"),
            outbound_name=platform_name(spec, "outbound"),
            routes_title=platform_name(spec, "routes"),
            modules=dispatch_modules(spec),
            compatibility_date=spec.compatibility_date.isoformat(),
            namespace_binding=d["bindings"]["namespace"],
            routes_binding=d["bindings"]["routes"],
            outbound_params=d["outbound_params"],
            saas_zone_id=spec.saas_zone.id if spec.saas_zone else None,
            fallback_origin=spec.fallback_origin,
        )
        if spec.isolation == "dispatch"
        else None
    )
    platform = Platform(
        fleet_prefix(spec.environment),
        PlatformArgs(account_id=spec.account_id, environment=spec.environment, dispatch=dispatch),
    )
    pulumi.export(outputs.ACCOUNT_ID, spec.account_id)
    pulumi.export(outputs.ENVIRONMENT, spec.environment)
    pulumi.export(outputs.DISPATCH_NAMESPACE, platform.dispatch_namespace)
    pulumi.export(outputs.ROUTING_KV_ID, platform.routing_kv_id)
    pulumi.export(outputs.DISPATCHER, platform.dispatcher)
