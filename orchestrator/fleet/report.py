"""What a fleet run is asked to do (`RolloutOptions`) and what it reports, per tenant and overall."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.core.names import tenant_of
from orchestrator.fleet.ports import (
    Operation,
)


class Result(StrEnum):
    OK = "ok"
    UNCHANGED = "unchanged"
    NO_DRIFT = "no-drift"
    DRIFTED = "drifted"
    FAILED = "failed"
    UNHEALTHY = "unhealthy"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    NOT_RUN = "not-run"


GOOD = frozenset({Result.OK, Result.UNCHANGED, Result.NO_DRIFT})


@dataclass(frozen=True)
class RolloutOptions:
    operation: Operation
    concurrency: int = 4
    """Stacks operated at once (the API budget, not the CPU, is the limit)."""
    wave_size: int = 10
    canary: str | None = None
    """Stack to deploy alone first; default: the first changed tenant."""
    continue_on_error: bool = False
    """Keep going past failed tenants (they are independent); a failed health gate still halts."""
    rollback: bool = False
    """On a failed gate, re-apply the last good stack file to every tenant of the wave."""
    allow_config_rollback: bool = False
    """Deploy a config_version lower than the deployed one (the Worker still refuses to serve it)."""
    force: bool = False
    """Skip change detection (every selected tenant runs)."""
    health_gate: bool = True
    drift_check: bool = False
    preview_only: bool = False
    clear_pending_creates: bool = False
    retries: int = 2
    """Extra attempts after a transient failure (busy stack, engine RPC hiccup)."""
    retry_delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.wave_size < 1 or self.retries < 0:
            raise ValueError("concurrency and wave size must be >= 1, retries >= 0")


def drift_options(concurrency: int = RolloutOptions.concurrency) -> RolloutOptions:
    """What `drift` runs, from any door (CLI, control room, the cluster's drift schedule): a
    preview-only refresh of each stack, judged by the drift rules."""
    return RolloutOptions(Operation.REFRESH, concurrency=concurrency, drift_check=True, preview_only=True)


@dataclass(frozen=True)
class TenantResult:
    stack: str
    operation: str
    result: Result
    wave: int | None = None
    bundle_hash: str | None = None
    detail: str = ""
    changes: Mapping[str, int] = field(default_factory=dict)
    attempts: int = 0
    duration_s: float = 0.0
    advice: tuple[str, ...] = ()
    """What the operator should run next for this tenant (recovery, removing kept data)."""

    @property
    def tenant(self) -> str:
        return tenant_of(self.stack)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "stack": self.stack,
            "operation": self.operation,
            "result": self.result.value,
            "wave": self.wave,
            "bundle_hash": self.bundle_hash,
            "detail": self.detail,
            "changes": dict(self.changes),
            "attempts": self.attempts,
            "duration_s": round(self.duration_s, 3),
            "advice": list(self.advice),
        }


@dataclass(frozen=True)
class FleetReport:
    operation: str
    results: tuple[TenantResult, ...]
    halted: bool = False
    halt_reason: str | None = None
    waves: int = 0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.halted and all(r.result in GOOD for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.result.value] = out.get(r.result.value, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "ok": self.ok,
            "halted": self.halted,
            "halt_reason": self.halt_reason,
            "waves": self.waves,
            "duration_s": round(self.duration_s, 3),
            "counts": self.counts(),
            "tenants": [r.as_dict() for r in self.results],
        }
