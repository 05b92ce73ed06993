"""A simulated cluster node: the real worker, workflows and activities over the simulated executor.

`python -m orchestrator.testing cluster-worker SPEC.json` runs one worker process whose world is the
simulated executor (`simulated.SimulatedExecutor`) wrapped in a **ledger**: every operation takes an
exclusive `flock` on its stack's lock file and appends `start`/`done` lines, so the tests and the
benchmark check from the executor's side (not by assuming) that no two operations on one stack ever
overlapped and that each ran to completion exactly once. A killed process's `flock` is released by
the kernel, as the operation died with it. `embedded_fleet(spec)` builds the embedded engine over
the same world, for side-by-side comparisons (`embedded_seams(spec)`: the same for a door's run).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.cluster.activities import WorkerWorld
from orchestrator.cluster.client import run_rollout_async
from orchestrator.cluster.worker import serve
from orchestrator.config.settings import Settings
from orchestrator.core.errors import EdgeError, TransientStackError
from orchestrator.core.health import GateResult, HealthCheck, HealthTarget
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet.audit import AuditLog
from orchestrator.fleet.changes import FleetInputs, Rendered
from orchestrator.fleet.ports import HealthGate, OpRequest, StackOutcome
from orchestrator.fleet.report import RolloutOptions
from orchestrator.fleet.rollout import Fleet
from orchestrator.ops.fleet_run import RunSeams
from orchestrator.testing.simulated import SimulatedExecutor

OVERLAPS = "overlaps.log"


class WorldSpec(BaseModel):
    """Everything a simulated node needs; the test writes it once and every worker reads it."""

    model_config = ConfigDict(frozen=True)

    address: str
    task_queue: str
    root: Path
    """Holds project/ (Pulumi.yaml, stack files), state/, work/, the audit log and ledger/."""
    latency_s: float = 0.0
    concurrency: int = 4
    sick: tuple[str, ...] = ()
    """Tenants the health gate finds degraded."""
    transient: dict[str, int] = {}
    """Per stack: how many of its first operations fail as transient (counted in the ledger, on any node)."""
    broken: tuple[str, ...] = ()
    """Stacks whose every operation fails for good (an `EdgeError`, never retried); also those listed in
    the world's `broken.json` when the operation runs (so a test can break a stack between two runs)."""
    program_digest: str = "p1"
    render_digest: str = "r1"
    queue_rate: float | None = None
    """The task queue's server-side rate limit (`max_task_queue_activities_per_second`); None: none."""

    @property
    def ledger(self) -> Path:
        return self.root / "ledger"

    @property
    def sick_marker(self) -> Path:
        return self.root / "sick.json"

    @property
    def broken_marker(self) -> Path:
        return self.root / "broken.json"

    def settings(self) -> Settings:
        return Settings(
            project_dir=self.root / "project",
            state_dir=self.root / "state",
            work_root=self.root / "work",
            passphrase_file=self.root / "passphrase",
            audit_log=self.root / "audit.jsonl",
            temporal_address=self.address,
            temporal_task_queue=self.task_queue,
            temporal_worker_concurrency=self.concurrency,
        )


@dataclass
class LedgerExecutor:
    """A `StackExecutor` that proves mutual exclusion per stack with `flock` and logs every operation."""

    inner: SimulatedExecutor
    ledger: Path
    transient: dict[str, int] = field(default_factory=dict)
    broken: tuple[str, ...] = ()
    broken_marker: Path | None = None

    def prepare(self) -> None:
        self.inner.prepare()

    def run(self, request: OpRequest) -> StackOutcome:
        with self._held(request.stack, request.operation.value) as earlier:
            if request.stack in self.broken or request.stack in _listed(self.broken_marker):
                raise EdgeError(f"stack {request.stack}: simulated failure")
            if earlier < self.transient.get(request.stack, 0):
                raise TransientStackError(f"stack {request.stack}: simulated transient failure {earlier + 1}")
            return self.inner.run(request)

    def rollback(self, stack: str, config_version: int | None) -> StackOutcome:
        with self._held(stack, "rollback"):
            return self.inner.rollback(stack, config_version)

    def outputs(self, stack: str) -> dict[str, Any]:
        return self.inner.outputs(stack)

    def _line(self, name: str, text: str) -> None:
        fd = os.open(self.ledger / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{text}\n".encode())
        finally:
            os.close(fd)

    @contextmanager
    def _held(self, stack: str, what: str) -> Iterator[int]:
        """The stack's lock held; yields how many operations on it started before this one."""
        self.ledger.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.ledger / f"{stack}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another operation on this stack is running right now
                self._line(OVERLAPS, f"{stack} {what} {os.getpid()}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            earlier = sum(1 for event, _, _ in ledger_lines(self.ledger, stack) if event == "start")
            self._line(f"{stack}.log", f"start {what} {os.getpid()} {time.time():.3f}")
            try:
                yield earlier
            except Exception:
                self._line(f"{stack}.log", f"failed {what} {os.getpid()} {time.time():.3f}")
                raise
            self._line(f"{stack}.log", f"done {what} {os.getpid()} {time.time():.3f}")
        finally:
            os.close(fd)


def _listed(marker: Path | None) -> set[str]:
    return set(json.loads(marker.read_text())) if marker is not None and marker.exists() else set()


def ledger_lines(ledger: Path, stack: str) -> list[tuple[str, str, int]]:
    """(event, operation, pid) per line of a stack's ledger, in order."""
    path = ledger / f"{stack}.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        event, what, pid, _ = line.split()
        out.append((event, what, int(pid)))
    return out


def overlaps(ledger: Path) -> list[str]:
    path = ledger / OVERLAPS
    return path.read_text().splitlines() if path.exists() else []


class SickGate:
    """The health gate of the simulated world: the spec's sick tenants are degraded, and those listed in
    the world's `sick.json` when the gate runs (so a test can make a tenant sick between two rollouts)."""

    def __init__(self, sick: Sequence[str], marker: Path | None = None) -> None:
        self.sick = set(sick)
        self.marker = marker

    def __call__(self, targets: Sequence[HealthTarget]) -> GateResult:
        sick = set(self.sick) | _listed(self.marker)
        checks = []
        for t in targets:
            bad = t.tenant in sick
            checks.append(HealthCheck(t, "degraded" if bad else "ok", "status degraded" if bad else "ok"))
        return GateResult(tuple(checks))


def _parts(spec: WorldSpec) -> tuple[Settings, LedgerExecutor, FileDeployedStore, FleetInputs]:
    settings = spec.settings()
    executor = LedgerExecutor(
        SimulatedExecutor(latency_s=lambda stack, op: spec.latency_s, health_base="http://127.0.0.1:1"),
        spec.ledger,
        dict(spec.transient),
        spec.broken,
        spec.broken_marker,
    )
    project = (settings.project_dir / "Pulumi.yaml").read_text().split("name:", 1)[1].split()[0]
    store = FileDeployedStore(settings, project)
    return settings, executor, store, FleetInputs(spec.program_digest, spec.render_digest)


def _render(stack: str) -> Rendered:
    return Rendered(f"sim-{stack}", 1)


def simulated_world(spec: WorldSpec) -> WorkerWorld:
    settings, executor, store, inputs = _parts(spec)
    gate: HealthGate = SickGate(spec.sick, spec.sick_marker)
    return WorkerWorld(
        settings=settings,
        executor=executor,
        store=store,
        desired=lambda stack: inputs.desired(settings.project_dir, stack),
        render=_render,
        gate=lambda timeout_s: gate,
    )


def embedded_seams(spec: WorldSpec) -> RunSeams:
    """The same world as a door's embedded run sees it (`ops.fleet_run.run_fleet`, the control room's jobs)."""
    _, executor, _, _ = _parts(spec)
    gate = SickGate(spec.sick, spec.sick_marker)
    return RunSeams(lambda settings, base_url: executor, gate, lambda project_dir: _render, throttle=False)


def embedded_fleet(spec: WorldSpec, audit: AuditLog) -> Fleet:
    """The embedded engine over the same simulated world."""
    settings, executor, store, inputs = _parts(spec)
    return Fleet(
        executor,
        store,
        desired=lambda stack: inputs.desired(settings.project_dir, stack),
        render=_render,
        gate=SickGate(spec.sick, spec.sick_marker),
        audit=audit,
        sleep=lambda s: None,
    )


class RolloutRequest(BaseModel):
    """`cluster-rollout`'s input: a rollout with any options (the CLI exposes only some)."""

    stacks: tuple[str, ...]
    options: RolloutOptions
    lease_s: float = 30.0
    gate_timeout_s: float = 5.0


def rollout_main(argv: Sequence[str]) -> int:
    """`cluster-rollout SPEC.json REQUEST.json`: run one rollout on the spec's cluster, print its report."""
    if len(argv) != 2:
        print("usage: python -m orchestrator.testing cluster-rollout SPEC.json REQUEST.json", file=sys.stderr)
        return 2
    spec = WorldSpec.model_validate_json(Path(argv[0]).read_text())
    request = RolloutRequest.model_validate_json(Path(argv[1]).read_text())
    project = (spec.root / "project" / "Pulumi.yaml").read_text().split("name:", 1)[1].split()[0]
    report = asyncio.run(
        run_rollout_async(
            spec.settings(),
            project,
            request.stacks,
            request.options,
            who="test@host",
            progress=lambda event, stack, detail: print(f"{event} {stack or '-'} {detail}", file=sys.stderr),
            gate_timeout_s=request.gate_timeout_s,
            lease_s=request.lease_s,
        )
    )
    print(json.dumps(report.as_dict()), flush=True)
    sys.stderr.flush()
    os._exit(0)  # temporalio/sdk-python#300: skip the teardown the SDK's runtime threads can abort


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m orchestrator.testing cluster-worker SPEC.json", file=sys.stderr)
        return 2
    spec = WorldSpec.model_validate_json(Path(argv[0]).read_text())
    world = simulated_world(spec)
    ready = lambda queue: print(f"ready {queue}", flush=True)  # noqa: E731
    asyncio.run(serve(world.settings, world, on_ready=ready, queue_rate=spec.queue_rate))
    return 0
