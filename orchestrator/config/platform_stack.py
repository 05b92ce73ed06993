"""Writing the platform stack (`Pulumi.prod.yaml`) from a validated `PlatformSpec`, atomically.

Validation is the one every reader applies (`tenant_config.validate` over `PlatformSpec`); the
file written is read back with the stack-file loader before it replaces anything, so what lands
is exactly what `plan`, the program and the Pulumi CLI will read.

An existing file is the operator's: it is replaced only when it still holds the example this
package ships (what setup-vps.sh copies into a fresh project directory), or with `force`, and
then only `clawdbot:platform` changes (ruamel round-trip): encryptionsalt, `cloudflare:*` and
comments stay.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config.stack_file import load_stack_file, set_value
from orchestrator.config.stack_writer import put_in_place, render_stack_file
from orchestrator.config.tenant_config import PLATFORM_KEY, check_stack_config, validate
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import ConfigError
from orchestrator.core.model import PlatformSpec
from orchestrator.core.names import PLATFORM_STACK, stack_file

EXAMPLE = REPO_ROOT / stack_file(Path("."), PLATFORM_STACK).name
"""The platform stack this package ships: a file still holding it is nobody's settings yet."""

ALWAYS_WRITTEN = ("account_id", "environment", "compatibility_date", "compatibility_flags", "isolation")
HEADER = (
    "# The platform stack: fleet-wide settings every tenant stack reads (orchestrator.core.model.PlatformSpec).\n"
    "# Written by `clawdbot-edge platform init`; edit it, or run that again with --force.\n"
)


def validate_platform(raw: Any) -> PlatformSpec:
    """The platform settings as every reader validates them (one line naming the field at fault)."""
    return validate(PlatformSpec, PLATFORM_STACK, PLATFORM_KEY, raw)


def platform_value(spec: PlatformSpec, given: Iterable[str]) -> dict[str, Any]:
    """What goes under `clawdbot:platform`: the main settings always, the rest only when given."""
    keep = {*ALWAYS_WRITTEN, *given}
    dumped = spec.model_dump(mode="json")
    return {key: dumped[key] for key in PlatformSpec.model_fields if key in keep}


def render_platform_stack(value: dict[str, Any]) -> str:
    return render_stack_file(HEADER, PLATFORM_KEY, value)


@dataclass(frozen=True)
class Written:
    path: Path
    previous: PlatformSpec | None
    """The settings the file held before (None: a new file, the example, or unreadable settings)."""


def _is_example(path: Path) -> bool:
    try:
        if EXAMPLE.exists() and os.path.samefile(path, EXAMPLE):
            return False  # the checkout's own file: whatever it holds now is the operator's
        return path.read_bytes() == EXAMPLE.read_bytes()
    except OSError:
        return False


def _readable_previous(config: dict[str, Any]) -> PlatformSpec | None:
    try:
        return validate_platform(config.get(PLATFORM_KEY))
    except ConfigError:
        return None


def _check_reads_back(path: Path, spec: PlatformSpec) -> None:
    stack = load_stack_file(path)
    check_stack_config(PLATFORM_STACK, stack.config)
    if validate_platform(stack.config.get(PLATFORM_KEY)) != spec:  # pragma: no cover - a bug of ours
        raise ConfigError(f"{path}: {PLATFORM_KEY} does not read back as written; nothing was changed")


def write_platform_stack(project_dir: Path, spec: PlatformSpec, given: Iterable[str], *, force: bool) -> Written:
    """Write `spec` as the platform stack of `project_dir`; refuses an operator's file unless `force`."""
    path = stack_file(project_dir, PLATFORM_STACK)
    value = platform_value(spec, given)
    if not path.exists() and not path.is_symlink():
        put_in_place(path, render_platform_stack(value), lambda tmp: _check_reads_back(tmp, spec), replace=False)
        return Written(path, None)
    if _is_example(path):
        put_in_place(path, render_platform_stack(value), lambda tmp: _check_reads_back(tmp, spec), replace=True)
        return Written(path, None)
    if not force:
        raise ConfigError(
            f"{path} already holds the platform settings; pass --force to replace {PLATFORM_KEY} "
            "(encryptionsalt, other keys and comments stay)"
        )
    current = load_stack_file(path).config  # an unreadable file is refused here, unchanged
    check_stack_config(PLATFORM_STACK, {**current, PLATFORM_KEY: value})
    previous = _readable_previous(current)
    set_value(path, PLATFORM_KEY, value)  # round-trip: only clawdbot:platform's lines change
    _check_reads_back(path, spec)
    return Written(path, previous)
