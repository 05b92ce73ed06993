"""Temporal schedules for drift, health and backup in cluster mode: the systemd timers' replacement.

`temporal schedules apply` creates each schedule, or updates it to what this code and the settings
say. Applying twice changes nothing: each schedule carries a digest of its definition in its
action's memo, and an equal digest is left alone. An update keeps the operator's pause and note.
The times are the timers' times (scripts/systemd/clawdbot-*.timer):

| schedule | timer | here |
|---|---|---|
| drift | `OnCalendar=*-*-* 00/6:17:00`, `RandomizedDelaySec=10min` | cron `17 */6 * * *`, jitter 10 min |
| health | `OnUnitActiveSec=5min` | every 5 min |
| backup | `OnCalendar=*-*-* 03:41:00`, `RandomizedDelaySec=20min` | cron `41 3 * * *`, jitter 20 min |

Every schedule uses the overlap policy SKIP, so a run still going when the next one is due makes
that one skip. The catch-up window is one period: after the server was down, one missed run is
made up, as `Persistent=true` does. The SDK calls used are those of temporalio 1.35.0
(`client/_schedule.py`): `Client.create_schedule`, `ScheduleHandle.update` (the callback returns
None to leave a schedule as it is), `ScheduleAlreadyRunningError` for an id that exists,
`ScheduleOverlapPolicy.SKIP`, and `ScheduleSpec.cron_expressions` / `intervals` / `jitter`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.config.settings import Settings

from .maintenance import BACKUP, DRIFT, HEALTH, KINDS, MaintenanceJob
from .names import MAINTENANCE_WORKFLOW, schedule_id

DIGEST_MEMO = "clawdbot-schedule-digest"


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: a cron line or a fixed interval, with a random delay and a catch-up window."""

    cron: str | None
    every: timedelta | None
    jitter: timedelta
    catchup: timedelta

    def describe(self) -> str:
        when = f"cron {self.cron}" if self.cron else f"every {_span(self.every or timedelta())}"
        return f"{when}, jitter {_span(self.jitter)}" if self.jitter else when


TIMINGS = {
    DRIFT: Timing("17 */6 * * *", None, timedelta(minutes=10), timedelta(hours=6)),
    HEALTH: Timing(None, timedelta(minutes=5), timedelta(0), timedelta(minutes=5)),
    BACKUP: Timing("41 3 * * *", None, timedelta(minutes=20), timedelta(days=1)),
}
"""The systemd timers' times (see the table above)."""


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Planned:
    """One schedule as it should be."""

    kind: str
    schedule_id: str
    job: MaintenanceJob
    timing: Timing

    @property
    def digest(self) -> str:
        """Changes when anything that shapes the schedule changes (job, times, workflow type)."""
        body = {"workflow": MAINTENANCE_WORKFLOW, "job": asdict(self.job), "timing": repr(self.timing)}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def schedule(self, state: ScheduleState | None = None) -> Schedule:
        timing = self.timing
        spec = ScheduleSpec(
            cron_expressions=[timing.cron] if timing.cron else [],
            intervals=[ScheduleIntervalSpec(every=timing.every)] if timing.every else [],
            jitter=timing.jitter or None,
        )
        action = ScheduleActionStartWorkflow(
            MAINTENANCE_WORKFLOW,
            self.job,
            id=f"{self.schedule_id}:run",  # the server appends the scheduled time
            task_queue=self.job.task_queue,
            memo={DIGEST_MEMO: self.digest},
        )
        policy = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timing.catchup)
        return Schedule(action=action, spec=spec, policy=policy, state=state or ScheduleState())


def planned(settings: Settings, project: str, concurrency: int = 4) -> list[Planned]:
    """The three schedules of this project on this node's task queue."""
    queue = settings.temporal_queue
    return [
        Planned(
            kind,
            schedule_id(project, queue, kind),
            # Only a drift runs stack operations; the others carry the default, so a new
            # --concurrency updates the drift schedule alone.
            MaintenanceJob(kind, project, queue, concurrency if kind == DRIFT else MaintenanceJob.concurrency),
            TIMINGS[kind],
        )
        for kind in KINDS
    ]


@dataclass(frozen=True)
class Applied:
    kind: str
    schedule_id: str
    action: str
    """created, updated or unchanged."""
    when: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _digest_of(description: ScheduleDescription) -> str | None:
    action = description.schedule.action
    memo = getattr(action, "memo", None) or {}
    raw = memo.get(DIGEST_MEMO)
    if raw is None:
        return None
    if isinstance(raw, Payload):
        value = description.data_converter.payload_converter.from_payloads([raw], [str])[0]
        return value if isinstance(value, str) else None
    return str(raw)


async def apply_one(client: Client, plan: Planned) -> Applied:
    when = plan.timing.describe()
    try:
        await client.create_schedule(plan.schedule_id, plan.schedule())
        return Applied(plan.kind, plan.schedule_id, "created", when)
    except ScheduleAlreadyRunningError:
        pass
    outcome = "unchanged"

    def update(given: ScheduleUpdateInput) -> ScheduleUpdate | None:
        nonlocal outcome
        if _digest_of(given.description) == plan.digest:
            outcome = "unchanged"
            return None
        outcome = "updated"
        current = given.description.schedule.state
        # The operator's pause and note survive; what the schedule does and when is ours.
        return ScheduleUpdate(plan.schedule(ScheduleState(note=current.note, paused=current.paused)))

    await client.get_schedule_handle(plan.schedule_id).update(update)
    return Applied(plan.kind, plan.schedule_id, outcome, when)


async def apply(client: Client, plans: list[Planned]) -> list[Applied]:
    return [await apply_one(client, plan) for plan in plans]


@dataclass(frozen=True)
class Listed:
    kind: str
    schedule_id: str
    found: bool
    when: str
    paused: bool = False
    note: str | None = None
    next_run: str | None = None
    last_run: dict[str, Any] | None = None
    """The newest run: its workflow id, when it started and its status (RUNNING, COMPLETED, FAILED …)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def describe(client: Client, plans: list[Planned]) -> list[Listed]:
    """Each planned schedule as the server has it (or `found: false`), with its last run's status."""
    listed = []
    for plan in plans:
        try:
            description = await client.get_schedule_handle(plan.schedule_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            listed.append(Listed(plan.kind, plan.schedule_id, False, plan.timing.describe()))
            continue
        info, state = description.info, description.schedule.state
        upcoming = info.next_action_times[0].astimezone(UTC).isoformat() if info.next_action_times else None
        last = None
        if info.recent_actions:
            newest = info.recent_actions[-1]
            run = getattr(newest.action, "workflow_id", None)
            status = None
            if run:
                status = (await client.get_workflow_handle(run).describe()).status
            started = newest.started_at if isinstance(newest.started_at, datetime) else None
            last = {
                "workflow_id": run,
                "started_at": started.astimezone(UTC).isoformat() if started else None,
                "status": status.name if status is not None else None,
            }
        listed.append(
            Listed(
                plan.kind,
                plan.schedule_id,
                True,
                plan.timing.describe(),
                paused=state.paused,
                note=state.note,
                next_run=upcoming,
                last_run=last,
            )
        )
    return listed


async def trigger(client: Client, plan: Planned) -> None:
    """Start one run now (the schedule's overlap policy still applies)."""
    await client.get_schedule_handle(plan.schedule_id).trigger(overlap=ScheduleOverlapPolicy.SKIP)
