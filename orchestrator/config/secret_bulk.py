"""A tenant's secrets as a set: which are declared and set (`list`), removing one (`unset`), and
taking many at once from a secret manager's export (`import`: a JSON object or dotenv lines).

Values are never returned, logged or put in an exception: errors name the line or key at fault.
An import is all-or-nothing: the whole input is parsed and checked, then written in one atomic
rewrite of the stack file (orchestrator.config.stack_file.set_secrets).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.key_paths import SECURE
from orchestrator.config.secret_entry import NAMES_KEY, check_passphrase, declared_secret_names, tenant_file
from orchestrator.config.stack_file import StackFile, load_stack_file, remove_secrets, set_secrets, set_value
from orchestrator.config.tenant_config import SECRETS_KEY
from orchestrator.core.errors import ConfigError
from orchestrator.core.model import is_secret_name

_DOTENV = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)")
_DOUBLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


@dataclass(frozen=True)
class SecretState:
    name: str
    declared: bool
    """In the tenant's secret_names (the Worker expects it)."""
    set: bool
    """A `secure:` value is in the stack file."""


@dataclass(frozen=True)
class Imported:
    stack: str
    path: Path
    written: tuple[str, ...]
    added: tuple[str, ...]
    """Names appended to secret_names (`add=True`)."""
    skipped: tuple[str, ...]
    """Undeclared names left out (`only_declared=True`)."""


def _set_names(stack: StackFile) -> list[str]:
    secrets = stack.get(SECRETS_KEY) or {}
    if not isinstance(secrets, dict):
        raise ConfigError(f"stack {stack.stack}: {SECRETS_KEY}: must be an object")
    return [name for name, node in secrets.items() if isinstance(node, dict) and SECURE in node]


def list_secrets(project_dir: Path, tenant: str) -> tuple[str, list[SecretState]]:
    """Every declared name and every name with a value, sorted, with whether each is declared and set."""
    stack = load_stack_file(tenant_file(project_dir, tenant))
    declared, present = set(declared_secret_names(stack)), set(_set_names(stack))
    states = [SecretState(n, n in declared, n in present) for n in sorted(declared | present)]
    return stack.stack, states


def unset_secret(project_dir: Path, tenant: str, name: str) -> str:
    """Remove the value of clawdbot:secrets.NAME (secret_names is left alone: the Worker still expects it)."""
    path = tenant_file(project_dir, tenant)
    stack = load_stack_file(path)
    key = f"{SECRETS_KEY}.{name}"
    node = stack.get(key) if name in _set_names(stack) else None
    if node is None:
        raise ConfigError(f"stack {stack.stack}: {key}: not set; nothing to unset")
    remove_secrets(path, {key: str(node[SECURE])})
    return stack.stack


def parse_secrets(text: str) -> dict[str, str]:
    """NAME -> value from a JSON object of strings or from dotenv lines (`doppler secrets download
    --format json|env`, `vault kv get -format=json …data`, a .env file). Errors never quote a value."""
    stripped = text.lstrip()
    values = _parse_json(stripped) if stripped.startswith("{") else _parse_dotenv(text)
    if not values:
        raise ConfigError("no secrets in the input (expected a JSON object or NAME=value lines)")
    return values


def _parse_json(text: str) -> dict[str, str]:
    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in pairs:
            if key in seen:
                raise ConfigError(f"input JSON: {key!r} appears twice")
            seen[key] = value
        return seen

    try:
        loaded = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"input JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    out: dict[str, str] = {}
    for key, value in loaded.items():
        if not isinstance(value, str):
            raise ConfigError(f"input JSON: {key!r}: a secret value must be a string, not {type(value).__name__}")
        out[key] = value
    return out


def _parse_dotenv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _DOTENV.fullmatch(line)
        if match is None:
            raise ConfigError(f"input line {number}: not NAME=value (or a JSON object)")
        name, value = match.group(1), _dotenv_value(match.group(2), number)
        if name in out:
            raise ConfigError(f"input line {number}: {name} appears twice")
        out[name] = value
    return out


def _dotenv_value(value: str, number: int) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        # The closing quote: the first one not escaped by a backslash (inside double quotes).
        pattern = r"'([^']*)'" if quote == "'" else r'"((?:[^"\\]|\\.)*)"'
        match = re.match(pattern, value)
        if match is None:
            raise ConfigError(f"input line {number}: unterminated {quote} quote (multi-line values: use JSON)")
        rest = value[match.end() :].strip()
        if rest and not rest.startswith("#"):
            raise ConfigError(f"input line {number}: text after the closing {quote} quote")
        inner = match.group(1)
        if quote == "'":
            return inner
        return re.sub(r"\\(.)", lambda m: _DOUBLE_ESCAPES.get(m.group(1), m.group(0)), inner)
    # Unquoted: an inline comment starts at " #", as in the dotenv tools.
    return re.split(r"[ \t]+#", value, maxsplit=1)[0].rstrip()


def import_secrets(
    project_dir: Path,
    tenant: str,
    values: dict[str, str],
    passphrase: str,
    *,
    add: bool = False,
    only_declared: bool = False,
) -> Imported:
    """Write every value of `values` into the tenant's stack file in one atomic rewrite.

    Everything is checked first (names, empty values, undeclared names, the passphrase), so a bad
    input changes nothing. Undeclared names are refused unless `add` appends them to secret_names
    or `only_declared` leaves them out (a manager's export often carries more than this tenant needs).
    """
    path = tenant_file(project_dir, tenant)
    stack = load_stack_file(path)
    bad = sorted(name for name in values if not is_secret_name(name))
    if bad and not only_declared:
        raise ConfigError(
            f"stack {stack.stack}: not UPPER_SNAKE_CASE secret names (A-Z, 0-9, _; at most 64): {', '.join(bad)}"
        )
    declared = declared_secret_names(stack)
    undeclared = sorted(name for name in values if name not in declared)
    if undeclared and not (add or only_declared):
        raise ConfigError(
            f"stack {stack.stack}: {NAMES_KEY}: not declared: {', '.join(undeclared)}; pass --add to declare "
            "them, or --only-declared to import just the declared ones"
        )
    chosen = {n: v for n, v in values.items() if n in declared} if only_declared else dict(values)
    if not chosen:
        raise ConfigError(f"stack {stack.stack}: none of the input's names is declared in {NAMES_KEY}")
    empty = sorted(name for name, value in chosen.items() if not value)
    if empty:
        raise ConfigError(f"stack {stack.stack}: refusing empty values for: {', '.join(empty)}")
    check_passphrase(stack, tenant, passphrase)
    added = [name for name in chosen if name not in declared]
    if added:
        set_value(path, NAMES_KEY, [*declared, *added])
    set_secrets(path, {f"{SECRETS_KEY}.{name}": value for name, value in chosen.items()}, passphrase)
    skipped = tuple(sorted(set(values) - set(chosen)))
    return Imported(stack.stack, path, tuple(sorted(chosen)), tuple(added), skipped)
