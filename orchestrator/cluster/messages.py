"""The values the cluster engine's workflows and activities exchange through the Temporal server.

Plain dataclasses (and the fleet's own result types), serialised as JSON by the pydantic data
converter (`temporalio.contrib.pydantic.pydantic_data_converter`) on every client and worker.
Nothing secret ever crosses: stack names, options, results and non-secret outputs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.core.health import HealthTarget
from orchestrator.fleet.ports import DeployedRecord
from orchestrator.fleet.report import RolloutOptions, TenantResult

LEASE_S = 30.0
"""Default heartbeat timeout of a stack operation: a worker silent this long is taken as dead and
its operation retried on another worker (after the recovery of what it left, see `activities`)."""
BOOKKEEPING_LEASE_S = 10.0
"""Heartbeat timeout of the plan, gate and commit activities (they beat every quarter of it)."""


@dataclass(frozen=True)
class Caller:
    """Who started a rollout, and the rollout's id: every node's audit lines of it carry both."""

    who: str
    run_id: str


@dataclass(frozen=True)
class RolloutJob:
    """What a client asks the rollout workflow to do."""

    caller: Caller
    project: str
    stacks: tuple[str, ...]
    options: RolloutOptions
    task_queue: str
    """Where the rollout's stack operations run (the region's queue)."""
    gate_timeout_s: float = 300.0
    lease_s: float = LEASE_S


class StackTask(StrEnum):
    RUN = "run"
    """The rollout's operation (`preview|up|refresh|destroy`, drift as a preview-only refresh)."""
    ROLLBACK = "rollback"
    """Re-apply the last good deployment after a failed gate."""


@dataclass(frozen=True)
class StackJob:
    """One operation on one stack: the input of the per-stack workflow and of its activity."""

    caller: Caller
    stack: str
    task: StackTask
    options: RolloutOptions
    wave: int | None
    lease_s: float = LEASE_S
    previous: TenantResult | None = None
    """ROLLBACK: the result the rollback replaces."""
    deployed: dict[str, Any] = field(default_factory=dict)
    """ROLLBACK: the outputs of the operation being undone."""


@dataclass(frozen=True)
class PlanJob:
    caller: Caller
    stacks: tuple[str, ...]
    options: RolloutOptions


@dataclass(frozen=True)
class GateJob:
    caller: Caller
    targets: tuple[HealthTarget, ...]
    operation: str
    timeout_s: float


@dataclass(frozen=True)
class CommitJob:
    caller: Caller
    records: tuple[DeployedRecord, ...]
    good: bool = True
    """Also keep them as last good (a gated deployment); False for a healthy rollback."""


@dataclass(frozen=True)
class AuditLine:
    caller: Caller
    stack: str
    operation: str
    result: str
    bundle_hash: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class ProgressEvent:
    """One progress event of a rollout, as the CLI and the control room show them."""

    event: str
    stack: str | None
    detail: str
