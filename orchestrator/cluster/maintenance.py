"""The cluster's periodic jobs: drift, health and backup. Temporal schedules start them (`schedules.py`).

On one VPS these are the systemd timers. In cluster mode they run here instead, once for the whole
cluster on whichever worker takes them, never once per node. Each run does what its timer's unit
does:

- **drift** lists the tenant stacks when it runs, so a tenant registered after `schedules apply` is
  included. It then runs the fleet's own rollout workflow as a child with the drift options of
  `drift --all`. Every stack operation keeps its per-stack workflow id, so a scheduled drift and an
  operator's rollout never run on one stack at once: the second one is refused as busy.
- **health** probes every tenant's health endpoint on Cloudflare (`health --remote`).
- **backup** runs `backup create` with the timer's retention.

A run that finds drift, an unhealthy tenant or a failed backup fails, naming them. The schedule's
last run then shows it (`temporal schedules list`), as a failed unit shows in `systemctl --failed`,
and it **alerts** as a failed timer's unit does (`OnFailure=clawdbot-alert@%n.service`): its last
step runs the same hook, `scripts/alert-hook.sh`, once (`ops/alerts.py`), on the worker that ran it,
naming the schedule and the command that shows why. A run that succeeds, or that an operator
cancelled, does not alert. The alert is not retried (a retry could post it twice); a channel that
fails makes the run's failure say so.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from orchestrator.backup.repository import Retention
    from orchestrator.cluster.messages import Caller, RolloutJob
    from orchestrator.cluster.names import (
        ALERT_ACTIVITY,
        BACKUP_ACTIVITY,
        HEALTH_ACTIVITY,
        MAINTENANCE_WORKFLOW,
        ROLLOUT_WORKFLOW,
        TENANT_STACKS_ACTIVITY,
        schedule_id,
    )
    from orchestrator.config.settings import Settings
    from orchestrator.core.errors import EdgeError
    from orchestrator.core.health import HealthCheck
    from orchestrator.core.masking import report_line
    from orchestrator.fleet.report import GOOD, FleetReport, drift_options

DRIFT, HEALTH, BACKUP = "drift", "health", "backup"
KINDS = (DRIFT, HEALTH, BACKUP)
BACKUP_RETENTION = Retention(keep_last=14, keep_days=30)
"""What the backup timer keeps (scripts/systemd/clawdbot-backup.service: --keep-last 14 --keep-days 30)."""
BACKUP_LEASE_WAIT_S = 1800.0
"""The timer's --lease-wait: a running fleet operation on that node is waited for, up to 30 min."""
QUICK = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=3)
"""Listing tenants and probing health: cheap and idempotent, retried on any failure."""
ONCE = RetryPolicy(maximum_attempts=1)
"""A backup is not retried by the server: the next scheduled run is the retry (as with the timer).
An alert neither: a retry after a lost answer could post it twice."""
_PLAIN_ID = re.compile(r"[A-Za-z0-9:_.@=-]{1,400}")


@dataclass(frozen=True)
class MaintenanceJob:
    """What one scheduled run does: the schedule's action carries it, fixed at `schedules apply`."""

    kind: str
    """drift, health or backup."""
    project: str
    task_queue: str
    """Where the run and (drift) its stack operations go: the region's queue."""
    concurrency: int = 4
    """drift: stack operations at once (the CLI's `--concurrency` default)."""


@dataclass(frozen=True)
class MaintenanceResult:
    kind: str
    summary: str


@dataclass(frozen=True)
class AlertJob:
    """The alert of a failed run: what failed (its schedule) and the command that shows why."""

    name: str
    see: str


@dataclass(frozen=True)
class HealthSummary:
    checked: int
    unhealthy: tuple[str, ...]
    """`tenant: reason` of every tenant that is not ok."""


@workflow.defn(name=MAINTENANCE_WORKFLOW)
class MaintenanceWorkflow:
    """One scheduled drift, health or backup run."""

    @workflow.run
    async def run(self, job: MaintenanceJob) -> MaintenanceResult:
        try:
            return await self._run(job)
        except (FailureError, TimeoutError) as failure:  # what fails a workflow (the rest: a bug, retried)
            if is_cancelled_exception(failure):
                raise  # an operator's cancel is not a failure to alert about
            await self._alert(job, failure)
            raise

    async def _alert(self, job: MaintenanceJob, failure: FailureError | TimeoutError) -> None:
        alert = AlertJob(schedule_id(job.project, job.task_queue, job.kind), _where(workflow.info().workflow_id))
        try:
            await workflow.execute_activity(
                ALERT_ACTIVITY, alert, start_to_close_timeout=timedelta(minutes=3), retry_policy=ONCE
            )
        except ActivityError as exc:
            why = exc.cause or exc
            raise ApplicationError(f"{_message(failure)}; its alert failed too: {why}", non_retryable=True) from None

    async def _run(self, job: MaintenanceJob) -> MaintenanceResult:
        if job.kind == DRIFT:
            return await self._drift(job)
        if job.kind == HEALTH:
            health: HealthSummary = await workflow.execute_activity(
                HEALTH_ACTIVITY,
                job,
                result_type=HealthSummary,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=QUICK,
            )
            if health.unhealthy:
                raise _failure(f"{len(health.unhealthy)} of {health.checked} tenants unhealthy", health.unhealthy)
            return MaintenanceResult(HEALTH, f"{health.checked} tenants healthy")
        if job.kind == BACKUP:
            summary: str = await workflow.execute_activity(
                BACKUP_ACTIVITY,
                job,
                result_type=str,
                start_to_close_timeout=timedelta(hours=1),
                retry_policy=ONCE,
            )
            return MaintenanceResult(BACKUP, summary)
        raise ApplicationError(f"unknown maintenance job {job.kind!r}", non_retryable=True)

    async def _drift(self, job: MaintenanceJob) -> MaintenanceResult:
        stacks: list[str] = await workflow.execute_activity(
            TENANT_STACKS_ACTIVITY,
            job,
            result_type=list[str],
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=QUICK,
        )
        me = workflow.info().workflow_id
        rollout = RolloutJob(
            Caller("schedule:drift", me), job.project, tuple(stacks), drift_options(job.concurrency), job.task_queue
        )
        report: FleetReport = await workflow.execute_child_workflow(
            ROLLOUT_WORKFLOW, rollout, id=f"{me}:rollout", task_queue=job.task_queue, result_type=FleetReport
        )
        bad = tuple(f"{t.stack}: {t.result.value}" for t in report.results if t.result not in GOOD)
        if bad:
            raise _failure(f"{len(bad)} of {len(report.results)} stacks drifted or failed", bad)
        return MaintenanceResult(DRIFT, f"{len(report.results)} stacks, no drift")


def _failure(headline: str, items: Sequence[str]) -> ApplicationError:
    """A failed run (not retried: the next scheduled run is the retry), naming what failed."""
    shown = "; ".join(items[:20]) + ("; …" if len(items) > 20 else "")
    return ApplicationError(f"{headline}: {shown}", non_retryable=True)


def _where(workflow_id: str) -> str:
    """The command that shows why a run failed (its failure, its activities), for the alert."""
    if _PLAIN_ID.fullmatch(workflow_id):  # a schedule's runs: `<schedule id>:run-<time>`
        return f"temporal workflow describe -w {workflow_id}"
    return "clawdbot-edge temporal schedules list"


def _message(failure: FailureError | TimeoutError) -> str:
    cause = failure.cause if isinstance(failure, FailureError) else None
    return f"{failure}: {cause}" if cause is not None else str(failure) or type(failure).__name__


def health_summary(checks: Sequence[HealthCheck]) -> HealthSummary:
    return HealthSummary(len(checks), tuple(f"{c.target.tenant}: {c.reason}" for c in checks if not c.ok))


class MaintenanceActivities:
    """The maintenance steps on this node, over the same library code as the CLI's commands."""

    def __init__(
        self,
        settings: Settings,
        *,
        tenant_stacks: Callable[[Settings], list[str]] | None = None,
        health_checks: Callable[[Settings], Sequence[HealthCheck]] | None = None,
        backup: Callable[[Settings], str] | None = None,
        alert: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._tenant_stacks = tenant_stacks or _tenant_stacks
        self._health_checks = health_checks or _remote_checks
        self._backup = backup or _backup
        self._alert = alert or _raise_alert

    def activities(self) -> list[Callable[..., Any]]:
        return [self.tenant_stacks, self.health, self.backup, self.alert]

    @activity.defn(name=TENANT_STACKS_ACTIVITY)
    async def tenant_stacks(self, job: MaintenanceJob) -> list[str]:
        return await asyncio.to_thread(self._tenant_stacks, self.settings)

    @activity.defn(name=HEALTH_ACTIVITY)
    async def health(self, job: MaintenanceJob) -> HealthSummary:
        return health_summary(await asyncio.to_thread(self._health_checks, self.settings))

    @activity.defn(name=BACKUP_ACTIVITY)
    async def backup(self, job: MaintenanceJob) -> str:
        try:
            return await asyncio.to_thread(self._backup, self.settings)
        except Exception as exc:  # the run fails naming why; the next scheduled run is the retry
            why = f"backup failed: {report_line(exc)}"  # kept in the cluster's history: redacted
            raise ApplicationError(why, type(exc).__name__, non_retryable=True) from None

    @activity.defn(name=ALERT_ACTIVITY)
    async def alert(self, job: AlertJob) -> None:
        try:
            await asyncio.to_thread(self._alert, job.name, job.see)
        except EdgeError as exc:
            raise ApplicationError(report_line(exc), "AlertError", non_retryable=True) from None


# The library is imported when a step runs, not with this module: the workflow sandbox re-imports
# the workflow's module for every run, and the backup and health code (boto3, rich) need not be.


def _tenant_stacks(settings: Settings) -> list[str]:
    from orchestrator.config.tenant_config import select_tenant_stacks

    return select_tenant_stacks(settings.project_dir, None)


def _remote_checks(settings: Settings) -> Sequence[HealthCheck]:
    from orchestrator.ops.health import remote_checks

    return remote_checks(settings, ())


def _raise_alert(name: str, see: str) -> None:
    from orchestrator.ops.alerts import raise_alert

    raise_alert(name, see)


def _backup(settings: Settings) -> str:
    from orchestrator.ops.state_backup import create_state_backup

    repo, bucket, manifest, pruned = create_state_backup(
        settings, lease_wait=BACKUP_LEASE_WAIT_S, retention=BACKUP_RETENTION
    )
    kept = f", kept {len(pruned.kept)}" if pruned is not None else ""
    return f"{repo.kind} backup {manifest.backup_id}: {manifest.file_count} files in s3://{bucket}{kept}"
