"""The fleet verbs size their runs from the API budget unless told otherwise (fleet/sizing.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fleet_project import fleet_project, ok_gate

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.engine.budget import ThrottleConfig
from orchestrator.fleet.changes import Rendered
from orchestrator.fleet.sizing import rollout_sizing
from orchestrator.ops.fleet_run import DEFAULT_SIZING
from orchestrator.server.schemas import JobRequest
from orchestrator.testing.simulated import SimulatedExecutor

TENANTS = [f"t{i:02d}" for i in range(9)]


class Project:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = fleet_project(tmp_path, TENANTS)
        # Every operation takes long enough that the pool fills up to its concurrency.
        self.sim = SimulatedExecutor(latency_s=lambda stack, op: 0.15, sleep=time.sleep)

    def invoke(self, *args: str) -> dict[str, object]:
        deps = FleetDeps(
            executor=lambda settings, url: self.sim,
            gate=ok_gate,
            render=lambda p: lambda s: Rendered(f"sim-{s}", 1),
            settings=lambda: self.settings,
        )
        result = CliRunner().invoke(cli, [*args, "--all", "--json"], obj=deps)
        assert result.exit_code == 0, result.output
        report: dict[str, object] = json.loads(result.stdout)
        return report


def test_the_default_is_the_sizing_of_cloudflares_budget() -> None:
    assert rollout_sizing(ThrottleConfig(requests=1200).rate) == DEFAULT_SIZING
    assert (DEFAULT_SIZING.concurrency, DEFAULT_SIZING.wave_size) == (6, 72)
    job = JobRequest(operation="up", all=True)
    assert (job.concurrency, job.wave_size) == (6, 72), "the control room's jobs default as the CLI does"


@pytest.mark.parametrize(
    ("flags", "in_flight"),
    [((), 6), (("--concurrency", "2"), 2), (("--api-budget", "300"), 2), (("--api-budget", "60"), 1)],
)
def test_preview_runs_as_many_stacks_at_once_as_sized(tmp_path: Path, flags: tuple[str, ...], in_flight: int) -> None:
    project = Project(tmp_path)
    project.invoke("preview", *flags)
    assert project.sim.max_in_flight == in_flight


@pytest.mark.parametrize(
    ("flags", "waves"),
    [((), 2), (("--wave-size", "3"), 4), (("--api-budget", "60"), 3), (("--api-budget", "60", "--wave-size", "8"), 2)],
)
def test_up_waves_are_sized_from_the_budget_unless_given(tmp_path: Path, flags: tuple[str, ...], waves: int) -> None:
    # 9 tenants: the canary alone, then waves of 72 (one), of 4 at a budget of 60 (two), or as given.
    report = Project(tmp_path).invoke("up", *flags)
    assert report["waves"] == waves and report["counts"] == {"ok": len(TENANTS)}


def test_help_says_how_the_defaults_are_computed() -> None:
    up_help = " ".join(CliRunner().invoke(cli, ["up", "--help"]).output.split())
    assert "(6 for 1,200 requests / 5 min)" in up_help and "(72 for 1,200 requests / 5 min)" in up_help
    assert "computed from --api-budget" in up_help
