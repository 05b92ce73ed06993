"""The cluster engine's activities: the rollout's steps, run on whichever node's worker picks them up.

Each activity builds the fleet's own `LocalSteps` over this node's `WorkerWorld` and calls the step
the embedded engine calls, so a stack operation, the gate's probes and the records are the same code
in both engines. What is the cluster's own:

- **Heartbeats and the lease.** A stack operation heartbeats every `lease_s / 4` while it runs; the
  workflow gives it `heartbeat_timeout = lease_s`. A worker silent that long (killed, partitioned) is
  taken as dead and its operation is retried, on any worker.
- **Recovery before a retry.** A retry whose previous attempt died mid-operation (its last heartbeat
  says `running`) first recovers the stack as `recover` does: provably stale locks are cleared
  (`orchestrator.engine.locks`: same host, dead pid); a lock still held by a live process (the dead
  worker's `pulumi` child still finishing, another host's run) is *not* broken: the attempt fails as
  transient and is retried with backoff until the lock is gone, so the lease is broken only when it
  is safe; pending operations of the interrupted update are cleared with a refresh
  (`--clear-pending-creates` when it was creating), then the operation runs.
- **Retries for transient errors only.** `TransientStackError` (a busy stack, an engine RPC hiccup)
  is raised to Temporal as a retryable `ApplicationError` with the embedded engine's backoff, at most
  `options.retries` times (counted in the heartbeat details, which Temporal hands to the next
  attempt); every other failure is the tenant's result, as in the embedded engine, and never retried.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from orchestrator.config.settings import Settings
from orchestrator.core.errors import TransientStackError
from orchestrator.core.health import HealthCheck
from orchestrator.core.masking import report_line
from orchestrator.fleet.audit import AuditLog
from orchestrator.fleet.changes import Desired, Rendered
from orchestrator.fleet.local_steps import LocalSteps
from orchestrator.fleet.ports import (
    ConfigVersions,
    DeployedStore,
    HealthGate,
    Operation,
    OpRequest,
    Preflight,
    StackExecutor,
)
from orchestrator.fleet.preflight import Debris
from orchestrator.fleet.report import TenantResult
from orchestrator.fleet.steps import RollbackAsk, StackRun
from orchestrator.ops.fleet_run import worker_concurrency

from .messages import BOOKKEEPING_LEASE_S, AuditLine, Caller, CommitJob, GateJob, PlanJob, StackJob
from .names import (
    AUDIT_ACTIVITY,
    COMMIT_ACTIVITY,
    GATE_ACTIVITY,
    PLAN_ACTIVITY,
    ROLLBACK_ACTIVITY,
    RUN_STACK_ACTIVITY,
)

TRANSIENT = "TransientStackError"
"""The `ApplicationError` type of a retryable failure (the only one the workflow's policy retries)."""

T = TypeVar("T")
BOOKKEEPING_SLOTS = 4
"""Threads beyond the operation slots, for plan, gate, commit and audit activities."""


Recover = Callable[[str, AuditLog], Debris]
"""Inspect a stack for a killed run's debris and clear its provably stale locks (`ops.fleet_run.recover_stack`)."""


@dataclass
class WorkerWorld:
    """What this node's activities run against: the real engine (`cluster.worker`) or a simulated one."""

    settings: Settings
    executor: StackExecutor
    store: DeployedStore
    desired: Callable[[str], Desired]
    render: Callable[[str], Rendered]
    gate: Callable[[float], HealthGate]
    """The health gate with a given timeout (the rollout's `--gate-timeout`)."""
    preflight: Callable[[AuditLog], Preflight] | None = None
    versions: ConfigVersions | None = None
    recover: Recover | None = None
    threads: ThreadPoolExecutor = field(init=False)
    """Where blocking steps run, so the event loop keeps heartbeating: a thread for every activity slot
    (the default pool, cpu + 4, would queue operations behind each other on a small VPS)."""

    def __post_init__(self) -> None:
        slots = worker_concurrency(self.settings) + BOOKKEEPING_SLOTS
        self.threads = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="activity")

    def audit(self, caller: Caller) -> AuditLog:
        return AuditLog(self.settings.audit_log, who=caller.who, run_id=caller.run_id)

    def steps(self, caller: Caller, gate_timeout_s: float = 300.0) -> LocalSteps:
        audit = self.audit(caller)
        return LocalSteps(
            self.executor,
            self.store,
            desired=self.desired,
            render=self.render,
            gate=self.gate(gate_timeout_s),
            audit=audit,
            preflight=self.preflight(audit) if self.preflight is not None else None,
            versions=self.versions,
        )


def _last_beat(details: Sequence[Any]) -> dict[str, Any]:
    """The previous attempt's last heartbeat (Temporal hands it to the retry), or {}."""
    last = details[-1] if details else None
    return dict(last) if isinstance(last, Mapping) else {}


class FleetActivities:
    """The activities of one worker, bound to its world (register `activities()` with the worker)."""

    def __init__(self, world: WorkerWorld) -> None:
        self.world = world
        self.node = f"{socket.gethostname()}:{os.getpid()}"

    def activities(self) -> list[Callable[..., Any]]:
        return [self.plan, self.run_stack, self.rollback, self.health_gate, self.commit, self.audit]

    async def _heartbeating(self, lease_s: float, beat: Mapping[str, Any], call: Callable[[], T]) -> T:
        """Run a blocking step in a thread, heartbeating `beat` every quarter lease until it returns.

        If the activity is cancelled meanwhile, the step still runs to its end (a half-done `up` is
        worse than a late one) and the cancellation is raised after it.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(loop.run_in_executor(self.world.threads, call))
        cancelled = False
        while True:
            activity.heartbeat(dict(beat))
            try:
                done, _ = await asyncio.wait({task}, timeout=max(lease_s / 4, 0.05))
            except asyncio.CancelledError:
                cancelled = True
                continue
            if done:
                break
        if cancelled:
            raise asyncio.CancelledError
        return task.result()

    @activity.defn(name=PLAN_ACTIVITY)
    async def plan(self, job: PlanJob) -> dict[str, TenantResult | None]:
        steps = self.world.steps(job.caller)
        return await self._heartbeating(
            BOOKKEEPING_LEASE_S, {"node": self.node}, lambda: steps.plan_stacks(job.stacks, job.options)
        )

    @activity.defn(name=RUN_STACK_ACTIVITY)
    async def run_stack(self, job: StackJob) -> StackRun:
        info = activity.info()
        previous = _last_beat(info.heartbeat_details)
        transient = int(previous.get("transient", 0))
        steps = self.world.steps(job.caller)
        if info.attempt > 1 and (previous.get("running") or previous.get("recovering")):
            beat = {"node": self.node, "running": False, "transient": transient, "recovering": True}
            await self._heartbeating(job.lease_s, beat, lambda: self._recover(job, previous, steps.audit))
        started = time.monotonic()
        beat = {"node": self.node, "running": True, "transient": transient}
        try:
            run = await self._heartbeating(
                job.lease_s, beat, lambda: steps.run_one(job.stack, job.options, job.wave, retry=False)
            )
        except TransientStackError as exc:
            transient += 1
            if transient > job.options.retries:
                return steps.failed(job.stack, job.options.operation, job.wave, exc, info.attempt, started)
            activity.heartbeat({"node": self.node, "running": False, "transient": transient})
            delay = job.options.retry_delay_s * 2 ** (transient - 1)
            # Activity failures are kept in the cluster's history: only redacted text goes there.
            retry = timedelta(seconds=delay)
            raise ApplicationError(report_line(exc), type=TRANSIENT, next_retry_delay=retry) from None
        return replace(run, result=replace(run.result, attempts=info.attempt)) if info.attempt > 1 else run

    def _recover(self, job: StackJob, previous: Mapping[str, Any], audit: AuditLog | None) -> None:
        """Before retrying after a lost worker: the way `recover` does, never breaking a live lock."""
        lost = f"previous attempt on {previous.get('node', 'an unknown node')} lost its lease"
        if audit is not None:
            audit.record(stack=job.stack, operation="recover", result="retrying", detail=lost)
        if self.world.recover is None or audit is None:
            return
        debris = self.world.recover(job.stack, audit)
        if debris.blocked:
            raise ApplicationError(f"{lost}; not breaking it yet: {'; '.join(debris.advice)}", type=TRANSIENT)
        if debris.pending:
            creating = any(getattr(p, "kind", "") == "creating" for p in debris.pending)
            request = OpRequest(
                job.stack,
                Operation.REFRESH,
                clear_pending_creates=creating,
                message="clawdbot fleet: recover an interrupted operation",
            )
            self.world.executor.run(request)
            detail = f"{lost}; cleared {len(debris.pending)} pending operations with a refresh"
            audit.record(stack=job.stack, operation="recover", result="cleared", detail=detail)

    @activity.defn(name=ROLLBACK_ACTIVITY)
    async def rollback(self, job: StackJob) -> StackRun:
        if job.previous is None:
            raise ApplicationError("a rollback job names no previous result", non_retryable=True)
        steps = self.world.steps(job.caller)
        ask = RollbackAsk(job.previous, job.deployed)
        done = await self._heartbeating(job.lease_s, {"node": self.node}, lambda: steps.rollback_one(ask))
        return StackRun(done.result, done.outputs, done.record)

    @activity.defn(name=GATE_ACTIVITY)
    async def health_gate(self, job: GateJob) -> list[HealthCheck]:
        steps = self.world.steps(job.caller, job.timeout_s)
        return await self._heartbeating(
            BOOKKEEPING_LEASE_S, {"node": self.node}, lambda: steps.health_checks(job.targets, job.operation)
        )

    @activity.defn(name=COMMIT_ACTIVITY)
    async def commit(self, job: CommitJob) -> dict[str, str]:
        steps = self.world.steps(job.caller)
        return await self._heartbeating(
            BOOKKEEPING_LEASE_S, {"node": self.node}, lambda: steps.commit_records(job.records, good=job.good)
        )

    @activity.defn(name=AUDIT_ACTIVITY)
    async def audit(self, line: AuditLine) -> None:
        steps = self.world.steps(line.caller)
        steps.note(line.stack, line.operation, line.result, bundle_hash=line.bundle_hash, detail=line.detail)
