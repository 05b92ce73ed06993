"""`up --rollback` rolls forward: the last good config, re-issued above the version the failed up deployed.

The Worker never adopts a config below the highest version it served (docs/contract.md, "Never
backwards"), so re-applying the old file as it was would leave the tenant `degraded`
(`rollback_refused`) instead of healthy. Simulated executor; the Worker's side is in
tests/test_reissue.py (the local edge in workerd).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_fleet import ROLLBACK, UP, World
from test_fleet_versions import _checkpoint

from orchestrator.core.crypto import MAX_CONFIG_VERSION
from orchestrator.core.errors import StackError
from orchestrator.fleet.ports import VersionFacts
from orchestrator.fleet.report import Result
from orchestrator.ops.fleet_run import deployed_config_versions


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def release(world: World, first: int, second: int) -> None:
    """Everyone deployed and healthy at config_version `first`; then a new release at `second`."""
    world.executor.config_versions = dict.fromkeys(world.stacks, first)
    assert world.fleet().run(world.stacks, UP).ok
    world.executor.calls.clear()
    for stack in world.stacks:
        world.write(stack, "v2")
        world.executor.bundles[stack] = f"new-{stack}"
        world.executor.config_versions[stack] = second
        world.executor.rollback_bundles[stack] = f"good-{stack}"
        world.gate.cures.add(f"good-{stack}")
    world.gate.sick = {"t00"}


def test_a_rollback_past_a_newer_version_re_issues_the_old_config_above_it(world: World) -> None:
    release(world, 3, 4)
    good = world.store.last_good("prod.t00")
    report = world.fleet().run(world.stacks, ROLLBACK)
    result = report.results[0]
    assert result.result is Result.ROLLED_BACK, result.detail
    assert world.executor.rollback_versions == {"prod.t00": 5}
    assert "re-issued as config_version 5" in result.detail
    assert "the next up needs clawdbot:tenant.config_version above 5" in result.detail
    # The rolled-back tenant was gated again at the version it now serves.
    assert [(t.stack, t.config_version) for t in world.gate.asked[-1]] == [("prod.t00", 5)]
    record = world.store.get("prod.t00")
    assert good is not None and record is not None and record.config_version == 5
    # What is deployed is no file of the registry: never "unchanged" against any of them.
    assert record.config_digest == f"{good.config_digest}+v5"


def test_the_next_up_of_the_failed_file_is_refused_below_the_re_issued_version(world: World) -> None:
    release(world, 3, 4)
    world.fleet().run(world.stacks, ROLLBACK)
    (world.project / "Pulumi.prod.t00.yaml").write_text("config:\n  clawdbot:tenant: {id: t00, config_version: 4}\n")
    fleet = world.fleet()
    fleet.versions = deployed_config_versions(world.settings, "clawdbot", world.store)
    result = fleet.run(world.stacks[:1], UP).results[0]
    assert result.result is Result.FAILED
    assert "config_version is 4, below the deployed 5" in result.detail


def test_a_rollback_at_the_same_version_re_applies_the_file_as_it_was(world: World) -> None:
    release(world, 3, 3)  # a code or routing change under the same config_version
    good = world.store.last_good("prod.t00")
    result = world.fleet().run(world.stacks, ROLLBACK).results[0]
    assert result.result is Result.ROLLED_BACK and "re-issued" not in result.detail
    assert world.executor.rollback_versions == {"prod.t00": None}
    record = world.store.get("prod.t00")
    assert good is not None and record is not None and record.config_digest == good.config_digest


def test_the_highest_deployed_version_anywhere_is_the_one_to_pass(world: World) -> None:
    release(world, 3, 4)
    # The state says 9 (someone ran `pulumi up` outside the fleet): 4 is not enough to move past.
    _checkpoint(world.settings.state_dir, "prod.t00", {"config_version": 9})
    fleet = world.fleet()
    fleet.versions = deployed_config_versions(world.settings, "clawdbot", world.store)
    assert fleet.run(world.stacks, ROLLBACK).results[0].result is Result.ROLLED_BACK
    assert world.executor.rollback_versions == {"prod.t00": 10}


def test_no_version_left_above_the_deployed_one_is_a_failed_rollback(world: World) -> None:
    release(world, 3, MAX_CONFIG_VERSION)
    result = world.fleet().run(world.stacks, ROLLBACK).results[0]
    assert result.result is Result.ROLLBACK_FAILED
    assert f"config_version {MAX_CONFIG_VERSION} is deployed; there is no higher one" in result.detail
    assert not any(op == "rollback" for _, op in world.executor.calls)


def test_an_unreadable_deployed_version_fails_the_rollback_without_touching_the_tenant(world: World) -> None:
    release(world, 3, 4)

    def versions(stack: str) -> VersionFacts:
        raise StackError(f"stack {stack}: state file is not JSON")

    fleet = world.fleet()
    # The up asks the same port before any stack runs; only the rollback meets the fault.
    fleet.versions = lambda stack: VersionFacts(4, 3) if not world.executor.calls else versions(stack)
    result = fleet.run(world.stacks, ROLLBACK).results[0]
    assert result.result is Result.ROLLBACK_FAILED and "state file is not JSON" in result.detail
    assert not any(op == "rollback" for _, op in world.executor.calls)
