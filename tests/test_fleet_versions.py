"""`up` never rolls a tenant's config_version back unless told to (the fleet's half of "never backwards")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_cli_fleet import Env
from test_fleet import UP, World

from orchestrator.cli import cli
from orchestrator.core.names import tenant_of
from orchestrator.engine.locks import checkpoint_outputs
from orchestrator.fleet.ports import VersionFacts
from orchestrator.fleet.report import Result, RolloutOptions
from orchestrator.fleet.rollout import Fleet


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _fleet(world: World, versions: dict[str, tuple[int | None, int | None]]) -> Fleet:
    fleet = world.fleet()
    fleet.versions = lambda stack: VersionFacts(*versions.get(stack, (1, None)))
    return fleet


@pytest.mark.parametrize(
    ("wanted", "deployed", "refused"),
    [(3, 4, True), (1, 2**53 - 1, True), (4, 4, False), (5, 4, False), (3, None, False), (None, 4, False)],
)
def test_a_lower_config_version_is_refused_before_any_stack_runs(
    world: World, wanted: int | None, deployed: int | None, refused: bool
) -> None:
    report = _fleet(world, {"prod.t03": (wanted, deployed)}).run(world.stacks, UP)
    result = next(r for r in report.results if r.stack == "prod.t03")
    if not refused:
        assert report.ok and result.result is Result.OK
        return
    assert result.result is Result.FAILED and world.ran() == []
    assert report.halted and "fix it or pass --continue-on-error" in (report.halt_reason or "")
    assert f"clawdbot:tenant.config_version is {wanted}, below the deployed {deployed}" in result.detail
    assert "--allow-config-rollback" in result.detail and "stack prod.t03" in result.detail


def test_the_others_still_deploy_with_continue_on_error(world: World) -> None:
    options = RolloutOptions(UP.operation, concurrency=3, wave_size=3, retry_delay_s=0, continue_on_error=True)
    report = _fleet(world, {"prod.t03": (3, 4)}).run(world.stacks, options)
    assert sorted(world.ran()) == sorted(s for s in world.stacks if s != "prod.t03")
    assert [r.stack for r in report.results if r.result is Result.FAILED] == ["prod.t03"]


def test_an_explicit_rollback_flag_deploys_it(world: World) -> None:
    options = RolloutOptions(UP.operation, concurrency=3, wave_size=3, retry_delay_s=0, allow_config_rollback=True)
    report = _fleet(world, {"prod.t03": (3, 4)}).run(world.stacks, options)
    assert report.ok and "prod.t03" in world.ran()


def test_unchanged_tenants_are_not_asked_about(world: World) -> None:
    world.fleet().run(world.stacks, UP)
    asked: list[str] = []
    fleet = world.fleet()
    fleet.versions = lambda stack: asked.append(stack) or VersionFacts(1, None)  # type: ignore[func-returns-value]
    world.write("prod.t05", "v2")
    assert fleet.run(world.stacks, UP).ok and asked == ["prod.t05"]


def _checkpoint(state: Path, stack: str, outputs: dict[str, object]) -> None:
    # The file backend's layout (.pulumi/stacks/<project>/<stack>.json) and the root stack resource
    # whose outputs are the stack's outputs (pulumi pkg/resource/stack/checkpoint.go).
    path = state / ".pulumi" / "stacks" / "clawdbot" / f"{stack}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    resources = [
        {"urn": f"urn:pulumi:{stack}::clawdbot::pulumi:pulumi:Stack::clawdbot-{stack}", "type": "pulumi:pulumi:Stack",
         "outputs": outputs},
        {"urn": "urn:x", "type": "pulumi:pulumi:Stack", "parent": "urn:y", "outputs": {"config_version": 99}},
    ]  # fmt: skip
    path.write_text(json.dumps({"version": 3, "checkpoint": {"stack": stack, "latest": {"resources": resources}}}))


def test_the_deployed_version_is_read_from_the_state_file(tmp_path: Path) -> None:
    _checkpoint(tmp_path, "prod.acme", {"config_version": 4, "script_name": "clawdbot-prod-acme"})
    assert checkpoint_outputs(tmp_path, "clawdbot", "prod.acme") == {
        "config_version": 4,
        "script_name": "clawdbot-prod-acme",
    }
    assert checkpoint_outputs(tmp_path, "clawdbot", "prod.nobody") == {}


def _env_with_versions(tmp_path: Path, file_version: str) -> Env:
    env = Env(tmp_path)
    path = env.settings.project_dir / "Pulumi.prod.acme.yaml"
    path.write_text(f"config:\n  clawdbot:tenant:\n    id: acme\n    config_version: {file_version}\n")
    _checkpoint(env.settings.state_dir, "prod.acme", {"config_version": 4})
    return env


def test_up_refuses_through_the_cli_and_the_flag_allows_it(tmp_path: Path) -> None:
    env = _env_with_versions(tmp_path, "3")
    refused = env.invoke("up", "--tenant", "acme", "--json")
    assert refused.exit_code == 1
    tenant = json.loads(refused.output)["tenants"][0]
    assert tenant["result"] == "failed" and "below the deployed 4" in tenant["detail"]
    assert env.sim.calls == []
    allowed = env.invoke("up", "--tenant", "acme", "--allow-config-rollback", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert [tenant_of(stack) for stack, op in env.sim.calls if op == "up"] == ["acme"]


@pytest.mark.parametrize("file_version", ["4", "5", '"3"'])
def test_up_goes_ahead_at_or_above_the_deployed_version(tmp_path: Path, file_version: str) -> None:
    # A version the program will refuse ("3" is text) is the program's to refuse, not the guard's.
    env = _env_with_versions(tmp_path, file_version)
    assert env.invoke("up", "--tenant", "acme", "--json").exit_code == 0


def test_up_help_names_the_flag() -> None:
    result = CliRunner().invoke(cli, ["up", "--help"])
    assert result.exit_code == 0 and "--allow-config-rollback" in result.output
