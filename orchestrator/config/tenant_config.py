"""Turn stack config into validated specs, with one-line errors: stack, key path, reason.

The same functions serve the Pulumi program (config handed over by the engine) and the offline
tools (config read from `Pulumi.<stack>.yaml`), so both reject exactly the same input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.config.stack_file import load_stack_file
from orchestrator.core.errors import ConfigError
from orchestrator.core.model import PlatformSpec, TenantSpec, _FieldError
from orchestrator.core.names import PLATFORM_STACK, TENANT_STACK_PREFIX, stack_file, stack_name_from_path, tenant_stack

NAMESPACE = "clawdbot"
TENANT_KEY = f"{NAMESPACE}:tenant"
SECRETS_KEY = f"{NAMESPACE}:secrets"
PLATFORM_KEY = f"{NAMESPACE}:platform"
Spec = TypeVar("Spec", bound=BaseModel)


def tenant_stacks(project_dir: Path) -> list[str]:
    """The tenant registry: one `Pulumi.prod.<tenant>.yaml` per tenant (never `pulumi stack ls`)."""
    return sorted(stack_name_from_path(p) for p in project_dir.glob(f"Pulumi.{TENANT_STACK_PREFIX}*.yaml"))


def _key_path(root: str, loc: Iterable[str | int]) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _one_line(stack: str, root: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _FieldError):
            loc, message = cause.loc, cause.message
        else:
            loc, message = tuple(error["loc"]), str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{_key_path(root, loc)}: {message}")
    extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"stack {stack}: {problems[0]}{extra}"


def validate(model: type[Spec], stack: str, root: str, raw: Any) -> Spec:
    """Validate `raw` (the object under config key `root`) or raise ConfigError in one line."""
    if raw is None:
        raise ConfigError(f"stack {stack}: {root}: missing (set it in Pulumi.{stack}.yaml)")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"stack {stack}: {root}: must be an object, not {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(stack, root, exc)) from None


def validate_tenant(stack: str, raw: Any, secret_names: Iterable[str], *, require_values: bool = True) -> TenantSpec:
    """Validate a tenant's config and check its secrets match `secret_names` both ways.

    `require_values=False` is for reading a stack file offline (plan, policy, render): a declared
    secret whose value is not set yet is fine there (a fresh clone's example stacks have none); the
    program, which deploys them, always requires every value.
    """
    spec = validate(TenantSpec, stack, TENANT_KEY, raw)
    if stack != tenant_stack(spec.id):
        raise ConfigError(
            f"stack {stack}: {TENANT_KEY}.id: {spec.id!r} does not match the stack name "
            f"(expected stack {tenant_stack(spec.id)})"
        )
    present, declared = set(secret_names), set(spec.secret_names)
    for name in sorted(declared - present) if require_values else ():
        raise ConfigError(
            f"stack {stack}: {SECRETS_KEY}.{name}: declared in secret_names but has no value "
            f"(python -m orchestrator secrets set {spec.id} {name})"
        )
    for name in sorted(present - declared):
        raise ConfigError(f"stack {stack}: {SECRETS_KEY}.{name}: has a value but is not listed in secret_names")
    return spec


def project_name(project_dir: Path) -> str:
    """The Pulumi project name (config keys are `<project>:...`), from the project's Pulumi.yaml."""
    try:
        document = yaml.safe_load((project_dir / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return NAMESPACE
    name = document.get("name") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name else NAMESPACE


def read_stack_config(project_dir: Path, stack: str) -> dict[str, Any]:
    """The `config:` map of a stack file, parsed as the Pulumi CLI parses it (secure values stay encrypted)."""
    path = stack_file(project_dir, stack)
    if not path.is_file():
        raise ConfigError(f"stack {stack}: no stack file {path}")
    try:
        return load_stack_file(path).config
    except ConfigError as exc:
        raise ConfigError(f"stack {stack}: {exc}") from None


def load_platform_spec(project_dir: Path) -> PlatformSpec:
    config = read_stack_config(project_dir, PLATFORM_STACK)
    return validate(PlatformSpec, PLATFORM_STACK, PLATFORM_KEY, config.get(PLATFORM_KEY))


def load_tenant_spec(project_dir: Path, stack: str) -> TenantSpec:
    """Validate a tenant stack file; secret values are never read (see `unset_secrets` for missing ones)."""
    config = read_stack_config(project_dir, stack)
    return validate_tenant(stack, config.get(TENANT_KEY), _secret_names(stack, config), require_values=False)


def unset_secrets(project_dir: Path, stack: str) -> list[str]:
    """Declared secret names of a tenant stack that have no value yet (`up` refuses the stack until set)."""
    config = read_stack_config(project_dir, stack)
    spec = validate_tenant(stack, config.get(TENANT_KEY), _secret_names(stack, config), require_values=False)
    present = set(_secret_names(stack, config))
    return [name for name in spec.secret_names if name not in present]


def _secret_names(stack: str, config: Mapping[str, Any]) -> list[str]:
    secrets = config.get(SECRETS_KEY) or {}
    if not isinstance(secrets, dict):
        raise ConfigError(f"stack {stack}: {SECRETS_KEY}: must be an object of NAME: {{secure: ...}}")
    return list(secrets)
