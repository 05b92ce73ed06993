"""The fleet verbs size their runs from the API budget unless told otherwise (fleet/sizing.py)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fleet_project import fleet_project, ok_gate

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.engine.budget import ThrottleConfig
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet.changes import FleetInputs, Rendered
from orchestrator.fleet.sizing import ENGINE_S_PER_UP, REQUESTS_PER_UP, Sizing, rollout_sizing
from orchestrator.ops.fleet_run import DEFAULT_SIZING, run_share, sizing_for_budget, worker_concurrency
from orchestrator.server.jobs import options_for
from orchestrator.server.library import Library
from orchestrator.server.schemas import JobRequest
from orchestrator.testing.simulated import SimulatedExecutor

TENANTS = [f"t{i:02d}" for i in range(9)]


class Project:
    def __init__(self, tmp_path: Path, share: float = 1.0) -> None:
        self.settings = fleet_project(tmp_path, TENANTS).model_copy(update={"api_budget_share": share})
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


def test_the_default_is_the_sizing_of_cloudflares_budget(tmp_path: Path) -> None:
    assert rollout_sizing(ThrottleConfig(requests=1200).rate) == DEFAULT_SIZING
    assert (DEFAULT_SIZING.concurrency, DEFAULT_SIZING.wave_size) == (6, 72)
    job = JobRequest(operation="up", all=True)
    sizing = Library(Project(tmp_path).settings).sizing(job.concurrency, job.wave_size)
    assert sizing == DEFAULT_SIZING, "the control room's jobs default as the CLI does"


def test_a_node_at_half_the_budget_sizes_from_half_of_it() -> None:
    half = ThrottleConfig.for_node(1200, 0.5)
    assert half.requests == 600 and half.rate == ThrottleConfig(requests=1200).rate / 2
    sizing = sizing_for_budget(1200, share=0.5)
    # 1.9 requests/s steady: 0.158 tenant ups/s; ceil(2 x 0.158 x 8 s) = 3 stacks, waves of 36.
    assert sizing.concurrency == math.ceil(2 * half.rate / REQUESTS_PER_UP * ENGINE_S_PER_UP) == 3
    assert sizing == rollout_sizing(half.rate) == Sizing(3, 36)
    assert sizing_for_budget(1200, 2, 10, share=0.5) == Sizing(2, 10), "what the user gives wins"


@pytest.mark.parametrize("budget", [60, 300, 1200, 5000, 100_000])
@pytest.mark.parametrize("shares", [(0.5, 0.5), (1 / 3,) * 3, (0.7, 0.3), (0.25,) * 4, (0.1, 0.2, 0.3, 0.4)])
def test_nodes_sized_from_their_shares_never_add_up_to_more_than_the_budget(
    budget: int, shares: tuple[float, ...]
) -> None:
    whole = sizing_for_budget(budget, share=1.0)
    nodes = [sizing_for_budget(budget, share=share) for share in shares]
    # The rates the nodes are sized for add up to at most the budget's (each share is floored).
    rates = [ThrottleConfig.for_node(budget, share).rate for share in shares]
    assert sum(rates) <= ThrottleConfig(requests=budget).rate + 1e-9
    # No node is sized for more than the whole budget. Together they run no more stacks than the whole
    # budget needs (its concurrency before the per-process cap of MAX_CONCURRENCY), but for rounding
    # each node's stacks up (a node needs at least one): at most one stack per node beyond the first.
    assert all(n.concurrency <= whole.concurrency and n.wave_size <= whole.wave_size for n in nodes)
    needed = math.ceil(round(2 * ThrottleConfig(requests=budget).rate / REQUESTS_PER_UP * ENGINE_S_PER_UP, 6))
    assert sum(n.concurrency for n in nodes) <= max(needed, 1) + len(shares) - 1


def test_the_cluster_engine_sizes_from_the_task_queues_share(tmp_path: Path) -> None:
    settings = Project(tmp_path, share=0.25).settings.model_copy(update={"temporal_queue_budget_share": 0.5})
    assert run_share(settings) == 0.25 and run_share(settings, cluster=True) == 0.5


def test_the_control_rooms_jobs_size_from_the_nodes_share(tmp_path: Path) -> None:
    library = Library(Project(tmp_path, share=0.5).settings)
    stacks = library.select(None)
    up = JobRequest(operation="up", all=True)
    options = options_for(up, stacks, library.sizing(up.concurrency, up.wave_size))
    assert (options.concurrency, options.wave_size) == (3, 36)
    asked = JobRequest(operation="preview", all=True, concurrency=5)
    assert options_for(asked, stacks, library.sizing(asked.concurrency, asked.wave_size)).concurrency == 5


@pytest.mark.parametrize(("share", "in_flight"), [(1.0, 6), (0.5, 3)])
def test_a_node_runs_the_stacks_its_share_sizes(tmp_path: Path, share: float, in_flight: int) -> None:
    project = Project(tmp_path, share=share)
    project.invoke("preview")
    assert project.sim.max_in_flight == in_flight


@pytest.mark.parametrize(("share", "waves"), [(1.0, 2), (0.5, 3)])
def test_a_nodes_waves_are_sized_from_its_share(tmp_path: Path, share: float, waves: int) -> None:
    # --api-budget 120: waves of 8 for the whole of it (9 tenants: canary, then one wave), of 4 for half.
    report = Project(tmp_path, share=share).invoke("up", "--api-budget", "120")
    assert report["waves"] == waves and report["counts"] == {"ok": len(TENANTS)}


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


def test_a_nodes_worker_runs_as_many_operations_as_its_share_keeps_busy(tmp_path: Path) -> None:
    settings = Project(tmp_path).settings
    assert settings.temporal_worker_concurrency is None
    assert worker_concurrency(settings) == DEFAULT_SIZING.concurrency == 6
    half = settings.model_copy(update={"api_budget_share": 0.5})
    assert worker_concurrency(half) == sizing_for_budget(1200, share=0.5).concurrency == 3
    assert worker_concurrency(half, budget=2400) == 6, "the worker's --api-budget is the user's whole budget"
    assert worker_concurrency(half.model_copy(update={"temporal_worker_concurrency": 5})) == 5, "the setting wins"


def test_the_scheduled_drift_is_sized_as_a_cluster_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.cli.schedules import _plans
    from orchestrator.cluster.maintenance import MaintenanceJob

    settings = Project(tmp_path).settings
    monkeypatch.setenv("CLAWDBOT_ENV_FILE", "/dev/null")
    monkeypatch.setenv("CLAWDBOT_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("CLAWDBOT_API_BUDGET_SHARE", "0.25")  # the node's own share: not the queue's
    monkeypatch.setenv("CLAWDBOT_TEMPORAL_QUEUE_BUDGET_SHARE", "0.5")
    by_kind = {plan.kind: plan.job.concurrency for plan in _plans()}
    assert by_kind == {"drift": 3, "health": MaintenanceJob.concurrency, "backup": MaintenanceJob.concurrency}
    assert {plan.kind: plan.job.concurrency for plan in _plans(8)}["drift"] == 8


@pytest.mark.parametrize(("share", "slots"), [(1.0, 6), (0.5, 3)])
def test_the_workers_activity_threads_follow_its_concurrency(tmp_path: Path, share: float, slots: int) -> None:
    from orchestrator.cluster.activities import BOOKKEEPING_SLOTS, WorkerWorld

    settings = Project(tmp_path, share=share).settings
    store = FileDeployedStore(settings, "clawdbot")
    desired = FleetInputs("p", "r").desired
    world = WorkerWorld(
        settings, SimulatedExecutor(), store, lambda s: desired(settings.project_dir, s), _render, lambda t: ok_gate
    )
    try:
        # A thread for every operation slot and the bookkeeping activities: none waits behind another.
        assert world.threads._max_workers == slots + BOOKKEEPING_SLOTS
    finally:
        world.threads.shutdown()


def _render(stack: str) -> Rendered:
    return Rendered(f"sim-{stack}", 1)
