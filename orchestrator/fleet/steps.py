"""What a rollout asks of the engine that runs it: the steps port, and the values that cross it.

`orchestrator.fleet.rollout.rollout` is the one rollout definition: change detection verdicts, waves,
gate verdicts, halt and rollback rules. It never touches a stack, a file or a clock itself; it awaits
these steps. Two engines implement them: the embedded one (`orchestrator.fleet.runner.StackRunner`,
threads in this process) and the cluster one (`orchestrator.cluster`, activities on any node's
worker, driven from a Temporal workflow). Every value here is plain data (dataclasses, pydantic
records, enums), so it can cross a process boundary as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.core.health import HealthCheck, HealthTarget
from orchestrator.fleet.ports import DeployedRecord
from orchestrator.fleet.report import RolloutOptions, TenantResult


@dataclass(frozen=True)
class StackRun:
    """One stack's operation as it ended: its result, what the gate needs, what the commit writes."""

    result: TenantResult
    outputs: Mapping[str, Any] = field(default_factory=dict)
    """Non-secret outputs of an `up` (health URL, bundle hash, config version); empty otherwise."""
    pending: DeployedRecord | None = None
    """The record an `up` writes once its gate passed (None: nothing to write)."""
    setup_error: str | None = None
    """The node cannot run stacks at all (no CLI, unsafe modes): the rollout stops (the reason)."""


@dataclass(frozen=True)
class WaveRun:
    """A batch of stacks run with bounded concurrency (a wave of an `up`, or every stack otherwise)."""

    runs: tuple[StackRun, ...]
    """One per stack asked for, in the order asked; not-run ones say why."""
    stop: str | None = None
    """Why the batch stopped early (a setup error, cancelled), or None."""


@dataclass(frozen=True)
class RollbackAsk:
    """One tenant of a wave to roll back."""

    previous: TenantResult
    """Its result so far (after the gate's verdict): what the rollback's result replaces."""
    deployed: Mapping[str, Any] = field(default_factory=dict)
    """The outputs of the operation being undone (its config_version, bundle hash), when it deployed."""


@dataclass(frozen=True)
class RollbackRun:
    """One tenant's rollback attempt: its new result and, when re-applied, what to gate and keep."""

    result: TenantResult
    outputs: Mapping[str, Any] = field(default_factory=dict)
    record: DeployedRecord | None = None
    """The record of what the rollback deployed (None: refused or failed; `result` says why)."""


class RolloutSteps(Protocol):
    """The I/O of a rollout. Each method is awaited by `rollout`; the embedded engine's never suspend."""

    def progress(self, event: str, stack: str | None, detail: str) -> None:
        """A progress event (`orchestrator.fleet.runner.Progress`)."""

    def now(self) -> float:
        """Seconds on a monotonic clock (the workflow's clock in the cluster engine)."""

    async def record(
        self, stack: str, operation: str, result: str, *, bundle_hash: str | None = None, detail: str | None = None
    ) -> None:
        """One audit-log line."""

    async def prepare(self, options: RolloutOptions) -> None:
        """Once, before the first stack runs (never when none does): what every stack needs (plugins)."""

    async def cancelled_now(self) -> bool:
        """True once the operator asked to stop: nothing new starts (running operations finish)."""

    async def plan(self, stacks: Sequence[str], options: RolloutOptions) -> Mapping[str, TenantResult | None]:
        """Change detection of an `up`: per stack None (changed: deploy it) or its result (unchanged, failed)."""

    async def run_stacks(self, stacks: Sequence[str], options: RolloutOptions, wave: int | None) -> WaveRun:
        """Run the operation on each stack, at most `options.concurrency` at once."""

    async def gate_health(self, targets: Sequence[HealthTarget], operation: str) -> Sequence[HealthCheck]:
        """Poll the targets' health until healthy or the gate's timeout; one check per target."""

    async def commit(self, records: Sequence[DeployedRecord]) -> Mapping[str, str]:
        """Write the records of gated deployments and mark them last good; per stack, why one was not written."""

    async def rollback(self, asks: Sequence[RollbackAsk], options: RolloutOptions) -> Sequence[RollbackRun]:
        """Re-apply each stack's last good deployment (refusing where the rollback rule says so)."""

    async def keep(self, records: Sequence[DeployedRecord]) -> Mapping[str, str]:
        """Write the records of healthy rollbacks (not marked last good); per stack, why one was not written."""
