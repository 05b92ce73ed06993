"""Turn stack config into validated specs, with one-line errors: stack, key path, reason.

The same functions serve the Pulumi program (config handed over by the engine) and the offline
tools (config read from `Pulumi.<stack>.yaml`), so both reject exactly the same input. Beyond each
spec's schema, a stack's config map as a whole must hold only known `clawdbot:` keys, and secrets
only under `clawdbot:secrets`, every one of them encrypted (`check_stack_config`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.config.key_paths import is_secure, secure_key_paths
from orchestrator.config.stack_file import load_stack_config, load_stack_file
from orchestrator.config.stack_writer import put_in_place, render_stack_file
from orchestrator.config.stack_yaml import YamlRefused, clip, kind_of, load_plain
from orchestrator.core.errors import ConfigError, UnknownTenantError
from orchestrator.core.model import FieldError, PlatformSpec, TenantSpec, is_tenant_id
from orchestrator.core.names import (
    PLATFORM_STACK,
    TENANT_STACK_PREFIX,
    stack_file,
    stack_name_from_path,
    tenant_of,
    tenant_stack,
)

NAMESPACE = "clawdbot"
TENANT_KEY = f"{NAMESPACE}:tenant"
SECRETS_KEY = f"{NAMESPACE}:secrets"
PLATFORM_KEY = f"{NAMESPACE}:platform"
TENANT_KEYS = (TENANT_KEY, SECRETS_KEY)
PLATFORM_KEYS = (PLATFORM_KEY,)
SECRETS_COMMAND = "python -m orchestrator secrets set"

Spec = TypeVar("Spec", bound=BaseModel)


def tenant_stacks(project_dir: Path) -> list[str]:
    """The tenant registry: one `Pulumi.prod.<tenant>.yaml` per tenant (never `pulumi stack ls`)."""
    return sorted(stack_name_from_path(p) for p in project_dir.glob(f"Pulumi.{TENANT_STACK_PREFIX}*.yaml"))


def select_tenant_stacks(project_dir: Path, tenants: Sequence[str] | None) -> list[str]:
    """The stacks of the named tenants, in the order given and each once; every tenant when none are named.

    The one tenant selection (fleet commands, the local edge, health, secret entry, the control
    room): an unknown or malformed name is an `UnknownTenantError` naming what is registered, and so
    is an empty registry; every door reports it as a usage error.
    """
    known = tenant_stacks(project_dir)
    if not tenants:
        if not known:
            raise UnknownTenantError(f"no tenants registered in {project_dir} (no Pulumi.prod.<tenant>.yaml files)")
        return known
    chosen = []
    for tenant in dict.fromkeys(tenants):
        if not is_tenant_id(tenant):
            raise UnknownTenantError(f"{tenant!r} is not a tenant id (lowercase letters, digits and dashes, 2-32 long)")
        stack = tenant_stack(tenant)
        if stack not in known:
            names = ", ".join(tenant_of(s) for s in known) or "none"
            file = stack_file(project_dir, stack).name
            raise UnknownTenantError(
                f"unknown tenant {tenant!r}: no stack file {file} in {project_dir} (registered: {names})"
            )
        chosen.append(stack)
    return chosen


def _key_path(root: str, loc: Iterable[str | int]) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{clip(str(part))}"
    return path


def _problem(error: Any) -> tuple[tuple[str | int, ...], str]:
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return cause.loc, cause.message
    message = str(error["msg"]).removeprefix("Value error, ")
    if str(error["type"]).endswith("_type") and "input" in error:
        # Strict types: say what YAML made of the value (never the value), e.g. `"3"` is text.
        message += f" (found {kind_of(error['input'])})"
    return tuple(error["loc"]), clip(message, 300)


def _one_line(stack: str, root: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        loc, message = _problem(error)
        problems.append(f"{_key_path(root, loc)}: {message}")
    extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"stack {stack}: {problems[0]}{extra}"


def validate(model: type[Spec], stack: str, root: str, raw: Any) -> Spec:
    """Validate `raw` (the object under config key `root`) or raise ConfigError in one line."""
    if raw is None:
        raise ConfigError(f"stack {stack}: {root}: missing (set it in Pulumi.{stack}.yaml)")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"stack {stack}: {root}: must be an object, not {kind_of(raw)}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(stack, root, exc)) from None


def unset_secret(tenant: str, name: str) -> ConfigError:
    """The refusal of a declared secret without a value, naming the command that sets it."""
    return ConfigError(
        f"stack {tenant_stack(tenant)}: {SECRETS_KEY}.{name}: declared in secret_names but has no value "
        f"({SECRETS_COMMAND} {tenant} {name})"
    )


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
        raise unset_secret(spec.id, name)
    for name in sorted(present - declared):
        raise ConfigError(f"stack {stack}: {SECRETS_KEY}.{name}: has a value but is not listed in secret_names")
    return spec


def project_name(project_dir: Path) -> str:
    """The Pulumi project name (config keys are `<project>:...`), from the project's Pulumi.yaml."""
    try:
        document = load_plain((project_dir / "Pulumi.yaml").read_bytes())
    except FileNotFoundError:
        return NAMESPACE
    except (OSError, YamlRefused) as exc:
        raise ConfigError(f"{project_dir / 'Pulumi.yaml'}: cannot be read ({exc})") from None
    name = document.get("name") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name else NAMESPACE


def read_stack_config(project_dir: Path, stack: str) -> dict[str, Any]:
    """The `config:` map of a stack file, parsed as the Pulumi CLI parses it (secure values stay encrypted).
    Read for this call and owned by the caller (`load_stack_config`): a change to it reaches nothing else."""
    path = stack_file(project_dir, stack)
    if not path.is_file():
        raise ConfigError(f"stack {stack}: no stack file {path}")
    try:
        return load_stack_config(path)
    except ConfigError as exc:
        raise ConfigError(f"stack {stack}: {exc}") from None


def load_platform_spec(project_dir: Path) -> PlatformSpec:
    config = read_stack_config(project_dir, PLATFORM_STACK)
    check_stack_config(PLATFORM_STACK, config)
    return validate(PlatformSpec, PLATFORM_STACK, PLATFORM_KEY, config.get(PLATFORM_KEY))


def load_tenant_spec(project_dir: Path, stack: str) -> TenantSpec:
    """Validate a tenant stack file; secret values are only checked to be encrypted, never read
    (`unset_secrets` names the declared ones without a value yet)."""
    config = read_stack_config(project_dir, stack)
    check_stack_config(stack, config)
    names = encrypted_secret_names(stack, config.get(SECRETS_KEY))
    return validate_tenant(stack, config.get(TENANT_KEY), names, require_values=False)


def unset_secrets(project_dir: Path, stack: str) -> list[str]:
    """Declared secret names of a tenant stack that have no value yet (`up` refuses the stack until set)."""
    config = read_stack_config(project_dir, stack)
    present = set(encrypted_secret_names(stack, config.get(SECRETS_KEY)))
    spec = validate_tenant(stack, config.get(TENANT_KEY), present, require_values=False)
    return [name for name in spec.secret_names if name not in present]


# --- the config map as a whole -------------------------------------------------------------


def check_known_keys(stack: str, keys: Iterable[str]) -> None:
    """Every `clawdbot:` key is one the stack takes; a misspelt one is an error, never ignored."""
    expected = PLATFORM_KEYS if stack == PLATFORM_STACK else TENANT_KEYS
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if key in expected or not _near(namespace, NAMESPACE):
            continue
        import difflib  # only to name the key meant: never on the way of a valid stack file

        close = difflib.get_close_matches(f"{NAMESPACE}:{name}", expected, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"this stack takes {', '.join(expected)}"
        raise ConfigError(f"stack {stack}: {clip(key)}: unknown key; {hint}")


def _near(namespace: str, ours: str) -> bool:
    """Our namespace, or a slip of it (`clawbot`, `Clawdbot`); other namespaces belong to others."""
    if namespace == ours:
        return True
    import difflib  # only for another namespace than ours (`pulumi:`, `cloudflare:` keys)

    return difflib.SequenceMatcher(None, namespace.lower(), ours).ratio() >= 0.8


def plaintext_secret(stack: str, name: str) -> ConfigError:
    """A business secret written as plain text: refused, saying how to store it encrypted."""
    return ConfigError(
        f"stack {stack}: {SECRETS_KEY}.{clip(name)}: is not encrypted; every value under {SECRETS_KEY} must be "
        f"a Pulumi secret: set it with `{SECRETS_COMMAND} {tenant_of(stack)} {clip(name)}`"
    )


def secret_in_plain_config(stack: str, key_path: str) -> ConfigError:
    return ConfigError(
        f"stack {stack}: {clip(key_path, 120)}: a secret cannot sit here: this config is embedded in the Worker "
        f"as plain text; put it under {SECRETS_KEY} with `{SECRETS_COMMAND}`"
    )


def encrypted_secret_names(stack: str, raw: Any) -> list[str]:
    """The names under `clawdbot:secrets` as the stack file holds it; each value must be `secure:`."""
    if raw is None:
        return []
    if is_secure(raw) or not isinstance(raw, Mapping):
        what = "one secret" if is_secure(raw) else kind_of(raw)
        raise ConfigError(f"stack {stack}: {SECRETS_KEY}: must be an object of NAME: {{secure: ...}}, not {what}")
    for name, value in raw.items():
        if not is_secure(value):
            raise plaintext_secret(stack, str(name))
    return [str(name) for name in raw]


def check_stack_config(stack: str, config: Mapping[str, Any]) -> None:
    """The rules on a stack file's config map beyond the specs: known keys, secrets where they belong."""
    check_known_keys(stack, config)
    for key in (PLATFORM_KEY, TENANT_KEY):
        for path in secure_key_paths(key, config.get(key)):
            raise secret_in_plain_config(stack, path)
    if stack != PLATFORM_STACK:
        encrypted_secret_names(stack, config.get(SECRETS_KEY))


def engine_object(stack: str, key: str, text: str | None) -> Any:
    """An object config value as the engine hands it to the program (JSON text), parsed in one line."""
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ConfigError(f"stack {stack}: {key}: nested too deeply") from None
    except ValueError as exc:
        if not text.lstrip().startswith(("{", "[")):
            raise ConfigError(f"stack {stack}: {key}: must be an object, not text") from None
        raise ConfigError(f"stack {stack}: {key}: is not valid JSON ({exc})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


TENANT_FILE_HEADER = (
    "# Tenant {tenant}: registered with `clawdbot-edge tenants add`. Field reference: README, Tenant config.\n"
)


def register_tenant(project_dir: Path, raw: Mapping[str, Any]) -> Path:
    """Write a new tenant's `Pulumi.prod.<tenant>.yaml`: validated (declared secrets may wait for
    their values), read back before it lands, 0600, never over an existing one. Callers check the
    hosts are its own first (`ownership.check_registered_ownership`)."""
    tenant = str(raw.get("id", ""))
    stack = tenant_stack(tenant)
    spec = validate_tenant(stack, raw, [], require_values=False)  # the id is safe in a path from here on
    path = stack_file(project_dir, stack)
    if path.exists() or path.is_symlink():
        raise ConfigError(f"tenant {tenant} is already registered ({path})")
    order = ["id", *TenantSpec.model_fields]
    value = {key: raw[key] for key in sorted(raw, key=order.index)}

    def reads_back(tmp: Path) -> None:
        config = load_stack_file(tmp).config
        check_stack_config(stack, config)
        if validate_tenant(stack, config.get(TENANT_KEY), [], require_values=False) != spec:
            raise ConfigError(f"{path}: does not read back as validated; nothing was written")  # pragma: no cover

    text = render_stack_file(TENANT_FILE_HEADER.format(tenant=tenant), TENANT_KEY, value)
    put_in_place(path, text, reads_back, replace=False)
    return path


def unregister_tenant(project_dir: Path, stack: str) -> None:
    """Delete the tenant's stack file (its encrypted secrets too): the registry forgets it."""
    stack_file(project_dir, stack).unlink()
