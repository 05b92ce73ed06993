"""Every name the cluster engine shares with the Temporal server: workflow and activity types, ids, queues.

Workers on every node and the clients that start rollouts must agree on these byte for byte; a
rename is a protocol change (running workflows would no longer find their activities), so they
live here once and nowhere else.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

ROLLOUT_WORKFLOW = "clawdbot.fleet.Rollout"
"""One workflow per fleet run (`preview|up|refresh|destroy|drift`): waves, gate, halt, rollback."""
STACK_WORKFLOW = "clawdbot.fleet.StackOperation"
"""One workflow per operation on one stack; its id is the stack's mutex across the cluster."""

PLAN_ACTIVITY = "clawdbot.fleet.plan"
"""Change detection and the never-backwards check of an `up`, for every selected stack."""
RUN_STACK_ACTIVITY = "clawdbot.fleet.run_stack"
"""One operation on one stack through the engine's executor (heartbeating while it runs)."""
GATE_ACTIVITY = "clawdbot.fleet.health_gate"
"""The health gate over a wave's deployed tenants."""
COMMIT_ACTIVITY = "clawdbot.fleet.commit"
"""A gated deployment's record and last good mark, written once the gate passed."""
ROLLBACK_ACTIVITY = "clawdbot.fleet.rollback"
"""Re-applying one tenant's last good deployment after a failed gate."""
AUDIT_ACTIVITY = "clawdbot.fleet.audit"
"""One line of the audit log, written on the node that runs the activity."""

MAINTENANCE_WORKFLOW = "clawdbot.ops.Maintenance"
"""One scheduled drift, health or backup run (`maintenance`, started by `schedules`)."""
TENANT_STACKS_ACTIVITY = "clawdbot.ops.tenant_stacks"
"""The tenant stacks of the registry when a scheduled drift runs."""
HEALTH_ACTIVITY = "clawdbot.ops.health"
"""Every tenant's health endpoint on Cloudflare (`health --remote`)."""
BACKUP_ACTIVITY = "clawdbot.ops.backup"
"""One state backup with the timer's retention (`backup create`)."""
ALERT_ACTIVITY = "clawdbot.ops.alert"
"""A failed scheduled run's alert, through the alert hook a failed timer's unit runs (`OnFailure=`)."""

PROGRESS_QUERY = "progress"
"""The rollout workflow's query: its progress events so far (what the CLI and the control room show)."""

CANCEL_SIGNAL = "cancel"
"""The rollout workflow's signal: start nothing new (operations already running finish)."""

_ID_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def stack_workflow_id(project: str, stack: str) -> str:
    """The id of any operation on `stack`: Temporal keeps at most one open workflow per id, so two
    rollouts (on any nodes) can never run an operation on one stack at the same time."""
    return f"stack:{_ID_SAFE.sub('_', project)}:{stack}"


def schedule_id(project: str, queue: str, job: str) -> str:
    """One schedule per job, project and task queue: several fleets (or regions) share a namespace."""
    return f"clawdbot:{_ID_SAFE.sub('_', project)}:{_ID_SAFE.sub('_', queue)}:{job}"


def rollout_workflow_id(project: str, operation: str, now: datetime | None = None) -> str:
    """A fresh id per rollout: rollouts over different stacks may run at once; their stacks may not."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"rollout:{_ID_SAFE.sub('_', project)}:{operation}:{moment}-{secrets.token_hex(4)}"
