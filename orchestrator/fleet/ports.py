"""The fleet's ports: what it asks of the outside world, and the types that cross them.

The fleet owns these; the adapters implement them (`orchestrator.engine.stacks`:
`AutomationExecutor`, `FileDeployedStore`; `orchestrator.fleet.health`: the gate; the CLI wires
the preflight). Nothing here imports an adapter, so scheduling never loads `pulumi.automation`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from orchestrator.core.drift import DriftReport
from orchestrator.core.health import GateResult, HealthTarget


@dataclass(frozen=True)
class VersionFacts:
    """For a stack: the config_version its stack file asks for, and what is known to be deployed.

    None where unknown (a file the program will refuse anyway; a stack never deployed)."""

    wanted: int | None
    deployed: int | None
    """The highest config_version deployed to the stack."""
    wanted_identity: str | None = None
    """`core.config_match.payload_identity` of the payload the stack file would sign."""
    deployed_identities: tuple[tuple[int, str], ...] = ()
    """(config_version, payload identity) of deployments that say which payload they signed."""


ConfigVersions = Callable[[str], VersionFacts]
"""The version port of `up` (see `orchestrator.fleet.local_steps.version_refusal`)."""


class Operation(StrEnum):
    PREVIEW = "preview"
    UP = "up"
    REFRESH = "refresh"
    DESTROY = "destroy"


@dataclass(frozen=True)
class OpRequest:
    """One operation on one stack, as the fleet asks for it."""

    stack: str
    operation: Operation
    drift_check: bool = False
    """Classify drift from the engine's events (preview/refresh), instead of `--expect-no-changes`."""
    preview_only: bool = False
    """refresh: report what changed at Cloudflare without writing state."""
    clear_pending_creates: bool = False
    """refresh: drop pending creates left by a killed run (see orchestrator.engine.locks)."""
    message: str | None = None


@dataclass(frozen=True)
class KeptResource:
    """A protected resource that `destroy` left in place (its data survives on purpose)."""

    urn: str
    type: str

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @property
    def kind(self) -> str:
        return "D1 database" if self.type.endswith(":D1Database") else self.type.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class StackOutcome:
    """A successful operation. Failures are raised as `StackError` subclasses."""

    stack: str
    operation: Operation
    changes: Mapping[str, int] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    """Stack outputs that are not secret; secret ones are dropped before the outcome is built.

    Dropped, not never seen: after an update `Stack.up()` runs `stack output --show-secrets`
    (pulumi/automation/_stack.py `up` -> `LocalWorkspace.stack_outputs`), so a secret output's
    plaintext passes through the executor's memory. The program exports none (tests/test_program.py).
    """
    drift: DriftReport | None = None
    duration_s: float = 0.0
    kept: tuple[KeptResource, ...] = ()
    """destroy: protected resources left in the stack (see `kept_protected` and `removal_commands`)."""
    advice: tuple[str, ...] = ()
    """What the operator should do next (e.g. the commands that remove what destroy kept)."""


class DeployedRecord(BaseModel):
    """What the fleet last deployed to a stack and saw healthy.

    Written only once the deployment passed its health gate (or the gate was off, or the tenant has
    no health URL): a tenant that deployed but failed the gate has no record, so the next run
    deploys and gates it again instead of calling it unchanged.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    stack: str
    bundle_hash: str | None
    """The stack's `bundle_hash` output."""
    config_version: int | None
    config_identity: str | None = None
    """The stack's `config_identity` output: the payload the deployment signed (None before it existed)."""
    health_url: str | None
    config_digest: str
    """sha256 of the tenant's stack file as deployed (covers secrets and everything else)."""
    program_digest: str
    """Fleet-wide digest of what else shapes resources (program, components, provider versions)."""
    render_digest: str
    """Fleet-wide digest of the inputs of rendering (worker source, templates, contract)."""
    state_fingerprint: str | None
    """size:mtime of the state file right after the deploy; a different one means someone else ran."""
    updated_at: datetime


class DriftRecord(BaseModel):
    """The last drift check of a stack, as the fleet recorded it."""

    model_config = ConfigDict(frozen=True)

    checked_at: datetime
    drifted: bool
    summary: str


class StackExecutor(Protocol):
    def prepare(self) -> None:
        """Once per run, before any stack: install what every stack needs (the provider plugins)."""

    def run(self, request: OpRequest) -> StackOutcome: ...

    def rollback(self, stack: str, config_version: int | None) -> StackOutcome:
        """Re-apply the last good stack file; with `config_version`, re-issued under that version."""

    def outputs(self, stack: str) -> dict[str, Any]: ...


class DeployedStore(Protocol):
    def get(self, stack: str) -> DeployedRecord | None: ...

    def state_changed(self, record: DeployedRecord) -> bool: ...

    def put(self, record: DeployedRecord) -> DeployedRecord: ...

    def invalidate(self, stack: str) -> None: ...

    def mark_good(self, stack: str) -> None: ...

    def put_many(self, records: Sequence[DeployedRecord], *, good: bool = False) -> None:
        """`put` for many records at once, and with `good` `mark_good` too, as one durable batch."""

    def last_good(self, stack: str) -> DeployedRecord | None: ...

    def put_drift(self, stack: str, report: DriftReport) -> None: ...

    def forget(self, stack: str) -> None: ...

    def drift(self, stack: str) -> DriftRecord | None: ...


HealthGate = Callable[[Sequence[HealthTarget]], GateResult]


@dataclass(frozen=True)
class Clearance:
    """What the preflight found for one stack before an operation."""

    blocked: str | None = None
    """Why the stack must not run now (a live lock, pending operations before an `up`), or None."""
    advice: tuple[str, ...] = ()
    """What the operator should know or run; recorded in the audit log and the report."""


Preflight = Callable[[str, Operation], Clearance]
"""Checks a stack before an operation; may clear provably stale debris (orchestrator.engine.locks)."""
