"""Stack names and the files they live in: one parser for `prod.<tenant>` and `Pulumi.<stack>.yaml`.

`prod` is the platform stack; every tenant is `prod.<tenant>` with its config in
`Pulumi.prod.<tenant>.yaml` (DESIGN.md, "Stacks and config"). Everything that turns a tenant into a
stack, a stack into a tenant or a file into a stack goes through here.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.core.errors import ConfigError

PLATFORM_STACK = "prod"
TENANT_STACK_PREFIX = f"{PLATFORM_STACK}."
DIY_ORGANIZATION = "organization"
"""A self-managed backend has no organizations; its stack references always name this one
(pulumi/pulumi pkg/backend/diy/store.go: "diy organization MUST always be organization")."""


def platform_reference(project: str) -> str:
    """What a tenant stack's StackReference names to read the platform stack's outputs."""
    return f"{DIY_ORGANIZATION}/{project}/{PLATFORM_STACK}"


def tenant_stack(tenant_id: str) -> str:
    return TENANT_STACK_PREFIX + tenant_id


def tenant_of(stack: str) -> str:
    return stack.removeprefix(TENANT_STACK_PREFIX)


def tenant_flag(stack: str) -> str:
    return f"--tenant {tenant_of(stack)}"


def is_tenant_stack(stack: str) -> bool:
    return stack.startswith(TENANT_STACK_PREFIX)


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def stack_name_from_path(path: str | os.PathLike[str]) -> str:
    name = Path(path).name
    if not (name.startswith("Pulumi.") and name.endswith(".yaml")) or name == "Pulumi.yaml":
        raise ConfigError(f"{path}: not a stack config file (expected Pulumi.<stack>.yaml)")
    return name[len("Pulumi.") : -len(".yaml")]
