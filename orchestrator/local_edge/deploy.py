"""From the tenant stack files to what the local edge deploys: bundle, relay key and KV values.

The KV values are made exactly as `TenantEdge` makes them at `pulumi up` (`crypto.sign_config`
over the bundle's config payload, `crypto.seal_secret` per secret name), from the stack's
`secure:` values decrypted with the passphrase file. Plaintexts live only in this process's
memory, for as long as sealing takes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config.ownership import check_ownership, registry_hosts
from orchestrator.config.secrets_provider import read_passphrase_file
from orchestrator.config.stack_file import read_config
from orchestrator.config.tenant_config import (
    SECRETS_KEY,
    TENANT_KEY,
    load_platform_spec,
    load_tenant_spec,
    select_tenant_stacks,
    unset_secret,
)
from orchestrator.core import crypto
from orchestrator.core.dispatch import dispatch_problems
from orchestrator.core.errors import ConfigError
from orchestrator.core.hostnames import FleetIndex
from orchestrator.core.model import TenantSpec
from orchestrator.core.names import stack_file, tenant_stack
from orchestrator.core.render import EdgeBundle, render_bundle
from orchestrator.local_edge.keys import relay_key_b64
from orchestrator.local_edge.layout import StateLayout

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PreparedTenant:
    spec: TenantSpec
    bundle: EdgeBundle
    relay_key_b64: str = field(repr=False)
    kv_values: dict[str, str] = field(repr=False)


def load_bundles(project_dir: Path, stacks: Sequence[str]) -> list[tuple[TenantSpec, EdgeBundle]]:
    """Validated specs and bundles; a tenant reaching another's hostname is refused (one runtime routes all)."""
    platform = load_platform_spec(project_dir)
    specs = [load_tenant_spec(project_dir, stack) for stack in stacks]
    fleet = FleetIndex(registry_hosts(project_dir))  # one index: N checks cost O(N), not O(N^2)
    for spec in specs:
        check_ownership(spec, fleet)
        # What `up` refuses (a path route in dispatch mode, an unknown plan) is refused here too.
        for key, problem in dispatch_problems(spec, platform):
            raise ConfigError(f"stack {tenant_stack(spec.id)}: {TENANT_KEY}.{key}: {problem}")
    return [(spec, render_bundle(spec, platform)) for spec in specs]


def kv_values(bundle: EdgeBundle, relay_key: bytes, secrets: Mapping[str, str]) -> dict[str, str]:
    """Every KV entry of the bundle, valued as TenantEdge values it."""
    values: dict[str, str] = {}
    for entry in bundle.kv_entries:
        if entry.kind == "config":
            values[entry.key] = crypto.sign_config(relay_key, bundle.tenant, bundle.config_payload)
        else:
            name = entry.secret_name or ""
            if name not in secrets:
                raise ConfigError(f"stack {tenant_stack(bundle.tenant)}: {SECRETS_KEY}.{name}: no value to seal")
            values[entry.key] = crypto.seal_secret(relay_key, bundle.tenant, name, secrets[name])
    return values


def _secret_values(project_dir: Path, spec: TenantSpec, passphrase: str | None) -> dict[str, str]:
    if not spec.secret_names:
        return {}
    if passphrase is None:
        raise ConfigError(f"stack {tenant_stack(spec.id)}: has secrets but no passphrase was given")
    config = read_config(stack_file(project_dir, tenant_stack(spec.id)), passphrase)
    raw = config.get(SECRETS_KEY) or {}
    values: dict[str, str] = {}
    for name in spec.secret_names:
        value = raw.get(name) if isinstance(raw, dict) else None
        if value is None:
            raise unset_secret(spec.id, name)
        if not isinstance(value, str):
            raise ConfigError(f"stack {tenant_stack(spec.id)}: {SECRETS_KEY}.{name}: must be a secret string")
        values[name] = value
    return values


def prepare_tenants(
    project_dir: Path,
    layout: StateLayout,
    *,
    passphrase_file: Path,
    tenants: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[PreparedTenant]:
    """Load, render and seal every selected tenant; fails before anything starts if one is wrong."""
    say = progress or (lambda _message: None)
    layout.ensure()
    stacks = select_tenant_stacks(project_dir, tenants)
    say(f"rendering {len(stacks)} tenant bundle(s) from {project_dir}")
    bundles = load_bundles(project_dir, stacks)
    needs_passphrase = any(spec.secret_names for spec, _ in bundles)
    passphrase = read_passphrase_file(passphrase_file) if needs_passphrase else None
    if needs_passphrase:
        say("decrypting tenant secrets with the passphrase file and sealing them for KV")

    def one(item: tuple[TenantSpec, EdgeBundle]) -> PreparedTenant:
        spec, bundle = item
        key_b64 = relay_key_b64(layout, spec.id, spec.relay_key_generation)
        secrets = _secret_values(project_dir, spec, passphrase)
        values = kv_values(bundle, crypto.relay_key_from_b64(key_b64), secrets)
        return PreparedTenant(spec=spec, bundle=bundle, relay_key_b64=key_b64, kv_values=values)

    # Each stack file has its own salt, so each costs one PBKDF2 derivation (1M rounds); hashlib
    # releases the GIL while deriving, so threads use every core.
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, bundles))
