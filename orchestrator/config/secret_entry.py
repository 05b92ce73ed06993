"""Operator secret entry and relay-key rotation, written straight into the tenant stack files.

`set_tenant_secret` encrypts with the stack's own passphrase key (orchestrator.config.stack_file), so a
value never passes through a `pulumi config set` command line. `rotate_relay_keys` bumps
`relay_key_generation`, a keeper of the tenant's RandomBytes relay key: the next `up` replaces
the key and re-encrypts every secret envelope and the signed config in that one update.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.key_paths import SECURE
from orchestrator.config.secrets_provider import PassphraseCrypter
from orchestrator.config.stack_file import (
    PASSPHRASE_PROVIDERS,
    StackFile,
    load_stack_file,
    remove_secrets,
    set_secret,
    set_value,
)
from orchestrator.config.tenant_config import SECRETS_KEY, TENANT_KEY, select_tenant_stacks
from orchestrator.core.errors import ConfigError, CryptoError, PassphraseError
from orchestrator.core.model import is_secret_name
from orchestrator.core.names import stack_file, tenant_of, tenant_stack

GENERATION_KEY = f"{TENANT_KEY}.relay_key_generation"
NAMES_KEY = f"{TENANT_KEY}.secret_names"


@dataclass(frozen=True)
class SecretWritten:
    stack: str
    path: Path
    added_to_secret_names: bool


@dataclass(frozen=True)
class Rotation:
    stack: str
    old_generation: int
    new_generation: int


def tenant_file(project_dir: Path, tenant: str) -> Path:
    (stack,) = select_tenant_stacks(project_dir, [tenant])
    return stack_file(project_dir, stack)


def check_secret_name(tenant: str, name: str) -> None:
    if not is_secret_name(name):
        raise ConfigError(
            f"stack {tenant_stack(tenant)}: {SECRETS_KEY}.{name}: secret names are UPPER_SNAKE_CASE "
            "(A-Z, 0-9, _; at most 64 characters, starting with a letter)"
        )


def set_tenant_secret(
    project_dir: Path, tenant: str, name: str, value: str, passphrase: str, *, add: bool = False
) -> SecretWritten:
    """Write `value` as the `secure:` value of clawdbot:secrets.NAME in the tenant's stack file.

    NAME must already be in the tenant's secret_names unless `add` is set, in which case it is
    appended there first: if the secret write then fails, the config says the value is missing,
    which is exactly what re-running this command fixes.
    """
    check_secret_name(tenant, name)
    if not value:
        raise ConfigError(f"stack {tenant_stack(tenant)}: {SECRETS_KEY}.{name}: refusing an empty value")
    path = tenant_file(project_dir, tenant)
    stack = load_stack_file(path)
    names = declared_secret_names(stack)
    added = name not in names
    if added and not add:
        raise ConfigError(
            f"stack {stack.stack}: {NAMES_KEY}: {name} is not declared; "
            f"pass --add to add it, or pick one of: {', '.join(names) or '(none declared)'}"
        )
    check_passphrase(stack, tenant, passphrase)  # before touching secret_names: a wrong one changes nothing
    if added:
        set_value(path, NAMES_KEY, [*names, name])
    set_secret(path, f"{SECRETS_KEY}.{name}", value, passphrase)
    return SecretWritten(stack=stack.stack, path=path, added_to_secret_names=added)


def declared_secret_names(stack: StackFile) -> list[str]:
    """The tenant's `secret_names` as the file has them (none: []), or a ConfigError naming the key."""
    names = stack.get(NAMES_KEY) or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"stack {stack.stack}: {NAMES_KEY}: must be a list of names")
    return names


def check_passphrase(stack: StackFile, tenant: str, passphrase: str) -> None:
    """A PassphraseError (saying how to adopt the file) unless the stack's salt opens with `passphrase`."""
    if stack.encryption_salt is None:
        return
    try:
        stack.crypter(passphrase)
    except PassphraseError as exc:
        raise PassphraseError(
            f"{exc}; if nobody has the passphrase that made this salt: python -m orchestrator secrets adopt {tenant}"
        ) from None


def rotate_relay_keys(project_dir: Path, tenants: list[str]) -> list[Rotation]:
    """Bump relay_key_generation in each tenant's stack file (each file rewritten atomically).

    Every file is read and checked before the first is written, so a bad tenant or value stops
    the run with nothing changed.
    """
    if not tenants:
        raise ConfigError(f"no tenant stacks to rotate (no Pulumi.prod.<tenant>.yaml in {project_dir})")
    planned: list[tuple[Path, Rotation]] = []
    for tenant in tenants:
        path = tenant_file(project_dir, tenant)
        stack = load_stack_file(path)
        if not isinstance(stack.get(TENANT_KEY), dict):
            raise ConfigError(f"stack {stack.stack}: {TENANT_KEY}: missing, or not an object")
        current = stack.get(GENERATION_KEY)
        current = 1 if current is None else current
        if isinstance(current, bool) or not isinstance(current, int) or current < 1:
            raise ConfigError(f"stack {stack.stack}: {GENERATION_KEY}: must be a positive integer")
        planned.append((path, Rotation(stack.stack, current, current + 1)))
    for path, rotation in planned:
        set_value(path, GENERATION_KEY, rotation.new_generation)
    return [rotation for _, rotation in planned]


@dataclass(frozen=True)
class Adoption:
    """What `adopt_stack_file` found (and, unless a dry run, removed) in one stack file."""

    stack: str
    path: Path
    salt_dropped: bool
    """The encryptionsalt did not open with the passphrase (or was malformed), so it went."""
    dropped: tuple[str, ...]
    """Key paths of the secure values that did not decrypt: each must be set again."""
    kept: int
    """Secure values that decrypt with the passphrase and stay as they are."""

    @property
    def changed(self) -> bool:
        return self.salt_dropped or bool(self.dropped)

    def set_again(self) -> list[str]:
        """The command that sets each dropped value again, value from a prompt or stdin."""
        tenant = tenant_of(self.stack)
        prefix = f"{SECRETS_KEY}."
        return [
            f"python -m orchestrator secrets set {tenant} {key[len(prefix) :]}"
            if key.startswith(prefix) and is_secret_name(key[len(prefix) :])
            else f"pulumi config set --secret --path '{key}' --stack {self.stack}"
            for key in self.dropped
        ]


def adopt_stack_file(path: Path, passphrase: str, *, dry_run: bool = False) -> Adoption:
    """Make a stack file usable with `passphrase`: drop the salt and values nobody here can open.

    For a stack file whose `encryptionsalt` was made with a passphrase that is lost (or never was
    yours: a copied example, a file from another VPS). Pulumi reuses an existing salt on `stack init`
    and fails with "incorrect passphrase", and so would `secrets set`. Without the salt, the next
    `secrets set` (or `pulumi stack init`) makes a new one from `passphrase`. When the salt opens,
    only the values that do not decrypt under it (copied from another stack) are dropped.
    """
    stack = load_stack_file(path)
    provider = stack.document.get("secretsprovider")
    if provider not in PASSPHRASE_PROVIDERS:
        raise ConfigError(f"{path}: secretsprovider {provider!r} is not the passphrase provider; nothing to adopt")
    crypter = None
    if stack.encryption_salt is not None:
        with contextlib.suppress(CryptoError):  # a wrong passphrase or a malformed salt
            crypter = stack.crypter(passphrase)
    ciphertexts = {key: str(stack.get(key)[SECURE]) for key in stack.secret_key_paths()}
    dropped = {key: ct for key, ct in ciphertexts.items() if crypter is None or not _opens(crypter, ct)}
    salt = stack.encryption_salt if crypter is None else None
    if not dry_run and (dropped or salt is not None):
        remove_secrets(path, dropped, salt)
    return Adoption(stack.stack, path, salt is not None, tuple(dropped), len(ciphertexts) - len(dropped))


def _opens(crypter: PassphraseCrypter, ciphertext: str) -> bool:
    try:
        crypter.decrypt(ciphertext)
    except CryptoError:
        return False
    return True
