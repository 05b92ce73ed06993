"""Cancelling a fleet run: nothing new starts once `cancelled` is true; what is in flight finishes."""

from __future__ import annotations

from pathlib import Path

from test_fleet import UP, World

from orchestrator.fleet.audit import read_events
from orchestrator.fleet.ports import Operation
from orchestrator.fleet.report import Result, RolloutOptions
from orchestrator.fleet.rollout import Fleet
from orchestrator.fleet.runner import CANCELLED


def cancelling_after(world: World, n: int) -> Fleet:
    """A fleet whose run is cancelled once `n` stack operations have been started."""
    fleet = world.fleet()
    fleet.cancelled = lambda: len(world.executor.calls) >= n
    return fleet


def test_cancel_stops_a_rollout_between_waves(tmp_path: Path) -> None:
    world = World(tmp_path, tenants=7)
    report = cancelling_after(world, 1).run(world.stacks, UP)  # the canary ran, then cancel
    assert report.halted and report.halt_reason == CANCELLED and report.exit_code == 1
    assert world.ran() == ["prod.t00"]
    by = {r.stack: r for r in report.results}
    assert by["prod.t00"].result is Result.OK
    assert {r.result for s, r in by.items() if s != "prod.t00"} == {Result.NOT_RUN}
    events = read_events(world.settings.audit_log)
    assert events[-1].result == "halted" and events[-1].detail == CANCELLED


def test_cancel_leaves_queued_stacks_not_run(tmp_path: Path) -> None:
    world = World(tmp_path, tenants=5)
    options = RolloutOptions(Operation.PREVIEW, concurrency=1)
    report = cancelling_after(world, 2).run(world.stacks, options)
    assert [s for s, _ in world.executor.calls] == ["prod.t00", "prod.t01"]
    assert [r.result for r in report.results] == [Result.OK, Result.OK] + [Result.NOT_RUN] * 3
    assert report.results[-1].detail == "not run: cancelled"
    assert report.halted and report.halt_reason == CANCELLED


def test_a_run_never_cancelled_is_unchanged(tmp_path: Path) -> None:
    world = World(tmp_path, tenants=3)
    report = world.fleet().run(world.stacks, RolloutOptions(Operation.PREVIEW))
    assert report.ok and not report.halted and report.halt_reason is None
