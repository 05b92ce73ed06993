"""Scratch projects for the demo, tests and benchmarks: fresh passphrase, fresh random secrets.

The example stack files' `secure:` values were encrypted under a passphrase nobody has, so a
scratch copy keeps each tenant's `clawdbot:tenant` object and writes new secret values under a
new passphrase, with the same tools an operator uses (orchestrator.config.stack_file). By default all
stacks of one scratch project share one `encryptionsalt`, so opening them costs one PBKDF2 derivation;
a bench passes each stack its own salt, as real stacks have.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.config.secrets_provider import forget_cached_key, new_encryption_salt
from orchestrator.config.stack_file import load_stack_file, set_secrets, set_value
from orchestrator.config.tenant_config import PLATFORM_KEY, SECRETS_KEY, TENANT_KEY, tenant_stacks
from orchestrator.core.dispatch import whole_host_routes
from orchestrator.core.model import Isolation
from orchestrator.core.names import PLATFORM_STACK, stack_file, tenant_stack

PROJECT_FILES = ("Pulumi.yaml", f"Pulumi.{PLATFORM_STACK}.yaml")


def write_passphrase_file(path: Path) -> str:
    """A fresh random passphrase in a new 0600 file; returns it (callers keep it in memory only)."""
    passphrase = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: a passphrase file that exists belongs to someone; never overwrite it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(passphrase + "\n")
    os.chmod(path, 0o600)
    return passphrase


def random_secret(name: str) -> str:
    prefix = "whsec_" if name == "WEBHOOK_SECRET" else "sk_demo_"
    return prefix + secrets.token_urlsafe(24)


class ScratchProject:
    """A project directory under construction; `add_tenant` writes one stack file per tenant."""

    def __init__(self, root: Path, passphrase: str, *, source: Path | None = None) -> None:
        self.root = root
        self.passphrase = passphrase
        self.salt = new_encryption_salt(passphrase)
        self.secrets: dict[str, dict[str, str]] = {}
        """Tenant → secret name → plaintext (in memory only; the demo signs webhooks with them)."""
        self.isolation: Isolation = "workers"
        self.salts = {self.salt}
        """Every `encryptionsalt` written here: their derived keys are in the key cache (forget_keys)."""
        root.mkdir(parents=True, exist_ok=True)
        if source is not None:
            for name in PROJECT_FILES:
                shutil.copyfile(source / name, root / name)

    def use_isolation(self, isolation: Isolation) -> None:
        """Switch the platform stack; dispatch mode routes whole hostnames, so later tenants get those."""
        set_value(stack_file(self.root, PLATFORM_STACK), f"{PLATFORM_KEY}.isolation", isolation)
        self.isolation = isolation

    def add_tenant(
        self, tenant: dict[str, Any], values: Mapping[str, str] | None = None, *, salt: str | None = None
    ) -> Path:
        """Write `Pulumi.prod.<id>.yaml` holding `tenant` and a fresh (or given) value per secret name.

        `salt`: this stack's own `encryptionsalt` (from `new_encryption_salt` with this passphrase);
        default the project's shared one.
        """
        path = stack_file(self.root, tenant_stack(str(tenant["id"])))
        if self.isolation == "dispatch":
            tenant = {**tenant, "routes": whole_host_routes(tenant.get("routes", []))}
        # The salt goes in first so set_secrets finds it instead of making a new one.
        self.salts.add(salt or self.salt)
        path.write_text(f"encryptionsalt: {json.dumps(salt or self.salt)}\nconfig: {{}}\n", encoding="utf-8")
        os.chmod(path, 0o600)
        set_value(path, TENANT_KEY, tenant)
        names = [str(n) for n in tenant.get("secret_names", [])]
        chosen = {n: (values or {}).get(n) or random_secret(n) for n in names}
        if chosen:
            set_secrets(path, {f"{SECRETS_KEY}.{n}": v for n, v in chosen.items()}, self.passphrase)
        self.secrets[str(tenant["id"])] = chosen
        return path

    def forget_keys(self) -> None:
        """Drop this project's derived stack keys from the key cache, for when the project and its
        passphrase are deleted: each would otherwise stay in the user keyring until it expires."""
        for salt in sorted(self.salts):
            forget_cached_key(salt)


def copy_examples(source: Path, dest: Path, passphrase: str, isolation: Isolation = "workers") -> ScratchProject:
    """Every tenant of `source` (the checkout's examples) re-created in `dest` with fresh secrets."""
    project = ScratchProject(dest, passphrase, source=source)
    if isolation != "workers":
        project.use_isolation(isolation)
    for stack in tenant_stacks(source):
        tenant = load_stack_file(stack_file(source, stack)).get(TENANT_KEY)
        if isinstance(tenant, dict):
            project.add_tenant(tenant)
    return project


def synthetic_tenant(index: int, *, secret_names: tuple[str, ...] = ("WEBHOOK_SECRET",)) -> dict[str, Any]:
    """A small valid tenant `t<index>` with one route, a custom domain and a distinct greeting."""
    tenant_id = f"t{index:03d}"
    zone = f"{tenant_id}.example.test"
    return {
        "id": tenant_id,
        "zone": {"id": f"{index:032x}", "name": zone},
        "routes": [f"shop.{zone}/*"],
        "custom_domains": [f"edge.{zone}"],
        "config_version": 1,
        "config": {"greeting": f"hello from {tenant_id}"},
        "secret_names": list(secret_names),
    }
