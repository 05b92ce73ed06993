"""The cluster engine's workflows: one per rollout, one per stack operation (the stack's mutex).

`RolloutWorkflow` awaits the fleet's own rollout definition (`orchestrator.fleet.rollout.rollout`)
with steps that are activities and child workflows, so waves, gate verdicts, halt and rollback are
the embedded engine's code, made durable: a crashed node's rollout resumes on another worker where
it stopped, without re-running finished tenants.

Every operation on a stack (the rollout's operation, a rollback) is a child workflow whose id is
`names.stack_workflow_id(project, stack)`. Temporal keeps at most one open workflow per id in a
namespace, so across every node at most one operation runs on a stack. **A second rollout touching
a stack that is busy refuses it**: that stack's result is `failed` ("busy: … does not wait"), and the
fleet's halt rules apply as for any failed tenant (a busy canary halts the rollout). It does not wait,
because a wait would deploy what the second rollout planned before the first one changed the stack.
The child is abandoned if the rollout itself is terminated, so the mutex is held until the operation
truly ended.

Workflow code is deterministic: the fleet's modules are pure (the import-linter contracts keep the
engine, the SDK and the Pulumi program out of `orchestrator.fleet`) and are passed through the
sandbox as the Temporal docs advise for deterministic model modules (docs.temporal.io, "Python SDK
sandbox", passthrough modules).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from orchestrator.cluster.messages import (
        BOOKKEEPING_LEASE_S,
        AuditLine,
        CommitJob,
        GateJob,
        PlanJob,
        ProgressEvent,
        RolloutJob,
        StackJob,
        StackTask,
    )
    from orchestrator.cluster.names import (
        AUDIT_ACTIVITY,
        CANCEL_SIGNAL,
        COMMIT_ACTIVITY,
        GATE_ACTIVITY,
        PLAN_ACTIVITY,
        PROGRESS_QUERY,
        ROLLBACK_ACTIVITY,
        ROLLOUT_WORKFLOW,
        RUN_STACK_ACTIVITY,
        STACK_WORKFLOW,
        stack_workflow_id,
    )
    from orchestrator.core.health import HealthCheck, HealthTarget
    from orchestrator.fleet.ports import DeployedRecord
    from orchestrator.fleet.report import FleetReport, Result, RolloutOptions, TenantResult
    from orchestrator.fleet.rollout import rollout
    from orchestrator.fleet.runner import CANCELLED, not_run
    from orchestrator.fleet.steps import RollbackAsk, RollbackRun, StackRun, WaveRun

OPERATION_TIMEOUT = timedelta(hours=6)
"""Longest a stack operation may run, retries included (a stuck engine is failed, not waited on forever)."""
LOST_WORKER_RETRIES = 3
"""Attempts a stack operation gets beyond `--retries`, for workers lost mid-operation."""
SHORT = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
"""Bookkeeping activities (plan, commit, audit): idempotent, retried on any failure."""


def _operation_policy(options: RolloutOptions) -> RetryPolicy:
    """Transient errors and lost workers only: every other failure comes back as the tenant's result."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=max(options.retry_delay_s, 0.1)),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5),
        maximum_attempts=options.retries + 1 + LOST_WORKER_RETRIES,
    )


def busy_result(job: StackJob, workflow_id: str) -> TenantResult:
    """A second rollout's answer for a stack another rollout is operating on: refused, never waited for."""
    detail = (
        f"stack {job.stack} is busy: another rollout's operation on it is still running (workflow {workflow_id}); "
        "this rollout does not wait: run it again once that one finished"
    )
    if job.previous is not None:
        return replace(job.previous, result=Result.ROLLBACK_FAILED, detail=f"{job.previous.detail}; rollback: {detail}")
    return TenantResult(job.stack, job.options.operation.value, Result.FAILED, job.wave, detail=detail)


def _failed(job: StackJob, why: str) -> StackRun:
    if job.previous is not None:
        detail = f"{job.previous.detail}; rollback: {why}"
        return StackRun(replace(job.previous, result=Result.ROLLBACK_FAILED, detail=detail))
    return StackRun(TenantResult(job.stack, job.options.operation.value, Result.FAILED, job.wave, detail=why))


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


@workflow.defn(name=STACK_WORKFLOW, sandboxed=False)
class StackOperationWorkflow:
    """One operation on one stack, as one activity (retried on transient errors and lost workers)."""

    @workflow.run
    async def run(self, job: StackJob) -> StackRun:
        activity = RUN_STACK_ACTIVITY if job.task is StackTask.RUN else ROLLBACK_ACTIVITY
        try:
            run: StackRun = await workflow.execute_activity(
                activity,
                job,
                result_type=StackRun,
                start_to_close_timeout=OPERATION_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=job.lease_s),
                retry_policy=_operation_policy(job.options),
            )
            return run
        except ActivityError as exc:
            return _failed(job, f"stack {job.stack}: gave up after retries: {_cause(exc)}")


class _Steps:
    """The rollout's steps as activities and per-stack child workflows (`RolloutSteps`)."""

    def __init__(self, owner: RolloutWorkflow, job: RolloutJob) -> None:
        self.owner = owner
        self.job = job

    def progress(self, event: str, stack: str | None, detail: str) -> None:
        self.owner.events.append(ProgressEvent(event, stack, detail))

    def now(self) -> float:
        return workflow.time()

    async def record(
        self, stack: str, operation: str, result: str, *, bundle_hash: str | None = None, detail: str | None = None
    ) -> None:
        line = AuditLine(self.job.caller, stack, operation, result, bundle_hash, detail)
        await workflow.execute_activity(
            AUDIT_ACTIVITY, line, start_to_close_timeout=timedelta(seconds=30), retry_policy=SHORT
        )

    async def prepare(self, options: RolloutOptions) -> None:
        return None  # every worker installs the provider plugins once, when it starts

    async def cancelled_now(self) -> bool:
        return self.owner.cancel_requested

    async def plan(self, stacks: Sequence[str], options: RolloutOptions) -> Mapping[str, TenantResult | None]:
        planned: dict[str, TenantResult | None] = await workflow.execute_activity(
            PLAN_ACTIVITY,
            PlanJob(self.job.caller, tuple(stacks), options),
            result_type=dict[str, TenantResult | None],
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=BOOKKEEPING_LEASE_S),
            retry_policy=SHORT,
        )
        return planned

    async def run_stacks(self, stacks: Sequence[str], options: RolloutOptions, wave: int | None) -> WaveRun:
        limit = asyncio.Semaphore(options.concurrency)
        out: dict[str, StackRun] = {}
        stop: list[str] = []

        async def one(stack: str) -> None:
            async with limit:
                if stop or self.owner.cancel_requested:
                    return  # halted or cancelled while queued: reported as not run
                self.progress("start", stack, options.operation.value)
                job = StackJob(self.job.caller, stack, StackTask.RUN, options, wave, self.job.lease_s)
                run = await self._stack(job)
                if run.setup_error is not None:
                    stop.append(run.setup_error)
                out[stack] = run
                self.progress("done", stack, run.result.result.value)

        await asyncio.gather(*(one(stack) for stack in stacks))
        reason = stop[0] if stop else None
        if reason is None and len(out) < len(stacks) and self.owner.cancel_requested:
            reason = CANCELLED
        return WaveRun(tuple(out.get(s) or not_run(s, options, wave, reason) for s in stacks), reason)

    async def _stack(self, job: StackJob) -> StackRun:
        """The stack's operation under its mutex: a child workflow whose id is the stack's."""
        workflow_id = stack_workflow_id(self.job.project, job.stack)
        try:
            handle = await workflow.start_child_workflow(
                StackOperationWorkflow.run,
                job,
                id=workflow_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary=f"{job.task.value} {job.stack}",
            )
        except WorkflowAlreadyStartedError:
            result = busy_result(job, workflow_id)
            await self.record(job.stack, result.operation, "failed", detail=result.detail)
            return StackRun(result)
        try:
            return await handle
        except ChildWorkflowError as exc:
            return _failed(job, f"stack {job.stack}: its operation workflow failed: {_cause(exc)}")

    async def gate_health(self, targets: Sequence[HealthTarget], operation: str) -> Sequence[HealthCheck]:
        checks: list[HealthCheck] = await workflow.execute_activity(
            GATE_ACTIVITY,
            GateJob(self.job.caller, tuple(targets), operation, self.job.gate_timeout_s),
            result_type=list[HealthCheck],
            start_to_close_timeout=timedelta(seconds=self.job.gate_timeout_s + 120),
            heartbeat_timeout=timedelta(seconds=BOOKKEEPING_LEASE_S),
            retry_policy=SHORT,
        )
        return checks

    async def commit(self, records: Sequence[DeployedRecord]) -> Mapping[str, str]:
        return await self._commit(records, good=True)

    async def keep(self, records: Sequence[DeployedRecord]) -> Mapping[str, str]:
        return await self._commit(records, good=False)

    async def _commit(self, records: Sequence[DeployedRecord], *, good: bool) -> Mapping[str, str]:
        if not records:
            return {}
        notes: dict[str, str] = await workflow.execute_activity(
            COMMIT_ACTIVITY,
            CommitJob(self.job.caller, tuple(records), good),
            result_type=dict[str, str],
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=SHORT,
        )
        return notes

    async def rollback(self, asks: Sequence[RollbackAsk], options: RolloutOptions) -> Sequence[RollbackRun]:
        limit = asyncio.Semaphore(options.concurrency)

        async def one(ask: RollbackAsk) -> RollbackRun:
            async with limit:
                result = ask.previous
                job = StackJob(
                    self.job.caller,
                    result.stack,
                    StackTask.ROLLBACK,
                    options,
                    result.wave,
                    self.job.lease_s,
                    result,
                    dict(ask.deployed),
                )
                run = await self._stack(job)
                return RollbackRun(run.result, run.outputs, run.pending)

        return list(await asyncio.gather(*(one(ask) for ask in asks)))


@workflow.defn(name=ROLLOUT_WORKFLOW)
class RolloutWorkflow:
    """One fleet run, durable: the fleet's rollout definition over activities on any node."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self.cancel_requested = False

    @workflow.run
    async def run(self, job: RolloutJob) -> FleetReport:
        return await rollout(_Steps(self, job), job.stacks, job.options)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self, since: int) -> list[ProgressEvent]:
        return self.events[since:]

    @workflow.signal(name=CANCEL_SIGNAL)
    def cancel(self) -> None:
        """Stop before the next stack starts; operations already running finish."""
        self.cancel_requested = True
