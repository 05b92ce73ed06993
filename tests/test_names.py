"""One parser for stack names and stack files (orchestrator/core/names.py), and everything that uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config.tenant_config import select_tenant_stacks, tenant_stacks
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


# One tenant selection (config/tenant_config.select_tenant_stacks) behind every door that takes tenants.


def _registry(tmp_path: Path, *tenants: str) -> Path:
    for tenant in tenants:
        (tmp_path / f"Pulumi.prod.{tenant}.yaml").write_text("config: {}\n")
    return tmp_path


def test_selection_keeps_order_drops_repeats_and_defaults_to_all(tmp_path: Path) -> None:
    project = _registry(tmp_path, "acme", "beta", "gamma")
    assert select_tenant_stacks(project, ["gamma", "acme", "gamma"]) == ["prod.gamma", "prod.acme"]
    assert select_tenant_stacks(project, None) == select_tenant_stacks(project, []) == tenant_stacks(project)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ghost", "unknown tenant 'ghost': no stack file Pulumi.prod.ghost.yaml in {dir} (registered: acme, beta)"),
        ("../acme", "'../acme' is not a tenant id"),
        ("Acme", "'Acme' is not a tenant id"),
        ("acme.yaml", "'acme.yaml' is not a tenant id"),
        ("", "'' is not a tenant id"),
    ],
)
def test_selection_refuses_unknown_and_malformed_names(name: str, message: str, tmp_path: Path) -> None:
    project = _registry(tmp_path, "acme", "beta")
    with pytest.raises(ConfigError) as info:
        select_tenant_stacks(project, ["acme", name])
    assert message.format(dir=project) in str(info.value)


def test_an_empty_registry_is_an_error_not_an_empty_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no tenants registered"):
        select_tenant_stacks(tmp_path, None)


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--tenant", "ghost"],
        ["tenants", "show", "ghost"],
        ["secrets", "rotate", "ghost"],
        ["health", "--remote", "--tenant", "ghost"],
    ],
)
def test_every_door_names_the_same_unknown_tenant(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAWDBOT_PROJECT_DIR", str(_registry(tmp_path, "acme")))
    for name in ("STATE_DIR", "WORK_ROOT", "LOCAL_EDGE_DIR"):
        monkeypatch.setenv(f"CLAWDBOT_{name}", str(tmp_path / name.lower()))
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code in (1, 2), result.output
    assert "unknown tenant 'ghost'" in result.output and "(registered: acme)" in result.output
