"""One parser for stack names and stack files (orchestrator/core/names.py), and everything that uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config.tenant_config import tenant_stacks
from orchestrator.core.errors import ConfigError
from orchestrator.core.names import (
    PLATFORM_STACK,
    is_tenant_stack,
    stack_file,
    stack_name_from_path,
    tenant_flag,
    tenant_of,
    tenant_stack,
)


def test_stack_name_from_path() -> None:
    assert stack_name_from_path("/x/Pulumi.prod.acme.yaml") == "prod.acme"
    for bad in ("/x/Pulumi.yaml", "/x/stack.yaml", "/x/Pulumi.prod.yml"):
        with pytest.raises(ConfigError, match="not a stack config file"):
            stack_name_from_path(bad)


@pytest.mark.parametrize("tenant", ["acme", "a", "globex-eu", "t2"])
def test_tenant_stack_file_round_trip(tenant: str, tmp_path: Path) -> None:
    stack = tenant_stack(tenant)
    assert is_tenant_stack(stack) and not is_tenant_stack(PLATFORM_STACK)
    assert tenant_of(stack) == tenant
    assert tenant_flag(stack) == f"--tenant {tenant}"
    path = stack_file(tmp_path, stack)
    assert path.parent == tmp_path
    assert stack_name_from_path(path) == stack


def test_the_registry_lists_tenant_stacks_by_the_same_parser(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.prod.acme.yaml", "Pulumi.prod.b.yaml", "Pulumi.dev.x.yaml"):
        (tmp_path / name).write_text("config: {}\n")
    (tmp_path / "Pulumi.prod.c.yml").write_text("config: {}\n")
    assert tenant_stacks(tmp_path) == ["prod.acme", "prod.b"]


@pytest.mark.parametrize("name", ["Pulumi.yaml", "stack.yaml", "Pulumi.prod.acme.yml"])
def test_plan_refuses_a_file_that_is_not_a_stack_file(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text("config: {}\n")
    result = CliRunner().invoke(cli, ["plan", "--config", str(path)])
    assert result.exit_code == 1
    assert f"{path}: not a stack config file (expected Pulumi.<stack>.yaml)" in result.output
