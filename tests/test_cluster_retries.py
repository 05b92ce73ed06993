"""The Temporal engine's retries: transient errors only, with the embedded engine's count; recovery first
when a worker was lost mid-operation, never breaking a lock a live process holds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cluster_fixtures import comparable, make_world, nodes, run_direct, run_embedded
from temporalio.exceptions import ApplicationError

from orchestrator.cluster.activities import TRANSIENT, FleetActivities, WorkerWorld
from orchestrator.cluster.messages import Caller, StackJob, StackTask
from orchestrator.config.settings import Settings
from orchestrator.engine.locks import PendingOperation
from orchestrator.fleet.audit import AuditLog, read_events
from orchestrator.fleet.changes import Rendered
from orchestrator.fleet.ports import Operation, OpRequest, StackOutcome
from orchestrator.fleet.report import RolloutOptions
from orchestrator.testing.cluster import WorldSpec, ledger_lines

OPTIONS = RolloutOptions(Operation.UP, concurrency=4, wave_size=5, retry_delay_s=0.1, continue_on_error=True)


@pytest.mark.temporal
def test_transient_failures_are_retried_as_the_embedded_engine_retries_them(
    temporal_server: str, tmp_path: Path
) -> None:
    faults: dict[str, Any] = {"transient": {"prod.t01": 2, "prod.t02": 5}, "broken": ("prod.t03",)}
    cluster, stacks = make_world(tmp_path / "cluster", temporal_server, 6, **faults)
    embedded, _ = make_world(tmp_path / "embedded", temporal_server, 6, **faults)
    expected = run_embedded(embedded, stacks, OPTIONS)
    with nodes(cluster, 2):
        got = run_direct(cluster, stacks, OPTIONS)
    assert comparable(got.report) == comparable(expected)
    attempts = {r["stack"]: (r["result"], r["attempts"]) for r in got.report["tenants"]}
    assert attempts["prod.t01"] == ("ok", 3)  # two transient failures, then success
    assert attempts["prod.t02"] == ("failed", 3)  # --retries 2: given up after three attempts
    assert attempts["prod.t03"] == ("failed", 1)  # not transient: never retried
    starts = {s: sum(e == "start" for e, _, _ in ledger_lines(cluster.ledger, s)) for s in stacks}
    assert starts == {**dict.fromkeys(stacks, 1), "prod.t01": 3, "prod.t02": 3}


@dataclass
class Debris:
    blocked: bool = False
    pending: tuple[PendingOperation, ...] = ()
    advice: tuple[str, ...] = ()


@dataclass
class Engine:
    requests: list[OpRequest] = field(default_factory=list)

    def prepare(self) -> None:
        return None

    def run(self, request: OpRequest) -> StackOutcome:
        self.requests.append(request)
        return StackOutcome(request.stack, request.operation)

    def rollback(self, stack: str, config_version: int | None) -> StackOutcome:
        raise AssertionError("no rollback here")

    def outputs(self, stack: str) -> dict[str, Any]:
        return {}


def _activities(tmp_path: Path, debris: Debris) -> tuple[FleetActivities, Engine, AuditLog]:
    settings = Settings(project_dir=tmp_path, audit_log=tmp_path / "audit.jsonl", work_root=tmp_path / "w")
    engine = Engine()
    world = WorkerWorld(
        settings=settings,
        executor=engine,
        store=None,  # type: ignore[arg-type]  # recovery never reads records
        desired=lambda stack: None,  # type: ignore[arg-type,return-value]
        render=lambda stack: Rendered("", 1),
        gate=lambda timeout: None,  # type: ignore[arg-type,return-value]
        recover=lambda stack, audit: debris,
    )
    return FleetActivities(world), engine, AuditLog(settings.audit_log, who="test")


JOB = StackJob(Caller("test", "rollout-1"), "prod.acme", StackTask.RUN, RolloutOptions(Operation.UP), 1)
LOST = {"node": "vps-2:4242", "running": True}


def test_a_lock_still_held_after_a_lost_worker_is_not_broken_but_retried_later(tmp_path: Path) -> None:
    activities, engine, audit = _activities(tmp_path, Debris(blocked=True, advice=("locked by vps-2 (pid 9)",)))
    with pytest.raises(ApplicationError) as caught:
        activities._recover(JOB, LOST, audit)
    assert caught.value.type == TRANSIENT and not caught.value.non_retryable  # retried with backoff
    assert "vps-2:4242 lost its lease" in str(caught.value) and "locked by vps-2" in str(caught.value)
    assert engine.requests == []  # nothing touched the stack


@pytest.mark.parametrize(("kind", "clears_creates"), [("creating", True), ("updating", False)])
def test_pending_operations_of_a_lost_worker_are_refreshed_away_before_the_retry(
    tmp_path: Path, kind: str, clears_creates: bool
) -> None:
    pending = (
        PendingOperation("urn:pulumi:prod.acme::clawdbot::cloudflare:index/workersKvNamespace:X::kv", "X", kind),
    )
    activities, engine, audit = _activities(tmp_path, Debris(pending=pending))
    activities._recover(JOB, LOST, audit)
    assert [(r.operation, r.clear_pending_creates) for r in engine.requests] == [(Operation.REFRESH, clears_creates)]
    lines = [(e.operation, e.result) for e in read_events(tmp_path / "audit.jsonl")]
    assert lines == [("recover", "retrying"), ("recover", "cleared")]


@pytest.mark.temporal
def test_a_failed_gate_rolls_the_wave_back_through_each_stacks_mutex_as_embedded(
    temporal_server: str, tmp_path: Path
) -> None:
    options = RolloutOptions(Operation.UP, concurrency=4, wave_size=3, retry_delay_s=0, rollback=True)
    worlds = [make_world(tmp_path / name, temporal_server, 7) for name in ("cluster", "embedded")]
    (cluster, stacks), (embedded, _) = worlds

    def second_rollout(world: WorldSpec) -> None:  # every tenant changed; t04 (wave 2) turns sick
        for stack in stacks:
            (world.root / "project" / f"Pulumi.{stack}.yaml").write_text("config: {v: v2}\n")
        world.sick_marker.write_text(json.dumps(["t04"]))

    assert run_embedded(embedded, stacks, options).ok
    second_rollout(embedded)
    expected = run_embedded(embedded, stacks, options)
    with nodes(cluster, 2):
        assert run_direct(cluster, stacks, options).report["ok"]
        second_rollout(cluster)
        got = run_direct(cluster, stacks, options)
    assert comparable(got.report) == comparable(expected)
    results = {r["stack"]: r["result"] for r in got.report["tenants"]}
    assert results["prod.t04"] == "rollback-failed" and results["prod.t05"] == "rolled-back"
    rollbacks = {s for s in stacks for _, op, _ in ledger_lines(cluster.ledger, s) if op == "rollback"}
    assert rollbacks == {"prod.t04", "prod.t05", "prod.t06"}  # the wave, each under its stack's mutex
