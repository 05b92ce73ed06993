"""Small pieces every rule uses: its tenant context and list-valued config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import ResourceValidationArgs

from . import context
from .props import as_int


def tenant_context(args: ResourceValidationArgs) -> context.TenantContext:
    return context.resolve(args.get_config(), urns=[args.urn])


def config_strings(config: Mapping[str, Any], key: str, default: Sequence[str]) -> tuple[str, ...]:
    value = config.get(key)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(str(v) for v in value)
    return tuple(default)


def config_int(config: Mapping[str, Any], key: str, default: int) -> int:
    return as_int(config.get(key), default)
