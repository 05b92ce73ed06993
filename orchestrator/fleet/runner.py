"""Running one operation on many stacks: each through preflight, the executor (with retries), the audit log.

A setup error (no CLI, unsafe modes) stops the run, since every other stack would fail alike; any
other failure stays with its tenant. An `up` keeps its deployed record pending until the rollout
(`orchestrator.fleet.rollout`) has seen the tenant healthy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from orchestrator.core import outputs as output_keys
from orchestrator.core.errors import EdgeError, SetupError, TransientStackError
from orchestrator.core.masking import report_line
from orchestrator.core.names import tenant_of
from orchestrator.fleet.audit import AuditLog
from orchestrator.fleet.changes import Desired, Rendered
from orchestrator.fleet.ports import (
    ConfigVersions,
    DeployedRecord,
    DeployedStore,
    HealthGate,
    Operation,
    OpRequest,
    Preflight,
    StackExecutor,
    StackOutcome,
)
from orchestrator.fleet.report import Result, RolloutOptions, TenantResult
from orchestrator.fleet.steps import StackRun, WaveRun

Progress = Callable[[str, str | None, str], None]
"""(event, stack or None, detail): `start`, `done`, `skip` move a stack along; the `NOTED` ones are lines."""
NOTED = ("cluster", "wave", "gate", "halt", "rollback", "retry")
"""Progress events a person reads as a line: the CLI prints them, the control room's jobs keep them
(`cluster`: the cluster engine's rollout id and task queue, before anything else)."""


CANCELLED = "cancelled"
"""The halt reason of a run whose `cancelled` turned true before every stack started."""


def _no_progress(event: str, stack: str | None, detail: str) -> None:
    return None


class StackRunner:
    """Runs one operation on each of many stacks: preflight, retries, bounded concurrency, audit.

    All collaborators are injected (the ports, `orchestrator.fleet.ports`). `Fleet` adds the rollout.
    """

    def __init__(
        self,
        executor: StackExecutor,
        store: DeployedStore,
        *,
        desired: Callable[[str], Desired],
        render: Callable[[str], Rendered],
        gate: HealthGate,
        audit: AuditLog | None = None,
        preflight: Preflight | None = None,
        versions: ConfigVersions | None = None,
        progress: Progress = _no_progress,
        sleep: Callable[[float], None] = time.sleep,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self.executor = executor
        self.store = store
        self.desired = desired
        self.render = render
        self.gate = gate
        self.audit = audit
        self.preflight = preflight
        self.versions = versions
        """`up` refuses a config_version below the deployed one, or equal to it with other content
        (`orchestrator.fleet.local_steps.version_refusal`)."""
        self.progress = progress
        self.sleep = sleep
        self.cancelled = cancelled
        """Asked before each stack and wave starts: once true, nothing new starts (in-flight ones finish)."""
        self._lock = threading.Lock()

    # -- running stacks -------------------------------------------------------------------

    def run_wave(self, stacks: Sequence[str], options: RolloutOptions, wave: int | None) -> WaveRun:
        """Run the stacks with bounded concurrency; a setup error stops the rest (returned as reason)."""
        out: dict[str, StackRun] = {}
        stop: list[str] = []

        def task(stack: str) -> None:
            if stop or self.cancelled():
                return  # halted or cancelled while queued: reported as not run
            run = self.run_one(stack, options, wave)
            with self._lock:
                if run.setup_error is not None:
                    stop.append(run.setup_error)
                out[stack] = run

        with ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="stack") as pool:
            futures = [pool.submit(task, s) for s in stacks]
            for future in as_completed(futures):
                future.result()
                if stop:
                    pool.shutdown(wait=True, cancel_futures=True)
                    break
        reason = stop[0] if stop else None
        if reason is None and len(out) < len(stacks) and self.cancelled():
            reason = CANCELLED
        return WaveRun(tuple(out.get(s) or not_run(s, options, wave, reason) for s in stacks), reason)

    def run_one(self, stack: str, options: RolloutOptions, wave: int | None, *, retry: bool = True) -> StackRun:
        """Preflight, then the operation; `retry`: retry transient failures here (the embedded engine),
        else raise them (`TransientStackError`) for the caller's retry policy (the cluster engine)."""
        try:
            return self._run_checked(stack, options, wave, retry=retry)
        except SetupError as exc:
            # The VPS cannot run stacks (CLI gone, unsafe modes): every other stack would fail alike.
            op = options.operation
            self.note(stack, op.value, "failed", detail=str(exc))
            result = TenantResult(stack, op.value, Result.FAILED, wave, detail=report_line(exc))
            return StackRun(result, setup_error=f"setup error: {report_line(exc)}")

    def _run_checked(self, stack: str, options: RolloutOptions, wave: int | None, *, retry: bool) -> StackRun:
        op = options.operation
        advice: tuple[str, ...] = ()
        if self.preflight is not None:
            clearance = self.preflight(stack, op)
            advice = clearance.advice
            if advice:
                verdict = "blocked" if clearance.blocked else "warning"
                self.note(stack, "preflight", verdict, detail="; ".join(advice))
            if clearance.blocked:
                self.note(stack, op.value, "failed", detail=clearance.blocked)
                return StackRun(
                    TenantResult(
                        stack, op.value, Result.FAILED, wave, detail=report_line(clearance.blocked), advice=advice
                    )
                )
        run = self._attempt(stack, options, wave, retry=retry)
        if advice:
            run = replace(run, result=replace(run.result, advice=advice + run.result.advice))
        return run

    def _attempt(self, stack: str, options: RolloutOptions, wave: int | None, *, retry: bool) -> StackRun:
        op = options.operation
        request = OpRequest(
            stack,
            op,
            drift_check=options.drift_check,
            preview_only=options.preview_only,
            clear_pending_creates=options.clear_pending_creates,
            message=f"clawdbot fleet {op.value}",
        )
        self.progress("start", stack, op.value)
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                outcome = self.executor.run(request)
                break
            except TransientStackError as exc:
                if not retry:
                    raise
                if attempts > options.retries:
                    return self.failed(stack, op, wave, exc, attempts, started)
                self.progress("retry", stack, report_line(exc, 120))
                self.sleep(options.retry_delay_s * 2 ** (attempts - 1))
            except SetupError:
                raise
            except EdgeError as exc:
                return self.failed(stack, op, wave, exc, attempts, started)
            except Exception as exc:  # a bug must not take the other tenants down with it
                return self.failed(
                    stack,
                    op,
                    wave,
                    EdgeError(f"stack {stack}: unexpected {type(exc).__name__}: {exc}"),
                    attempts,
                    started,
                )
        return self._succeeded(outcome, options, wave, attempts, started)

    def failed(
        self, stack: str, op: Operation, wave: int | None, exc: Exception, attempts: int, started: float
    ) -> StackRun:
        self.note(stack, op.value, "failed", detail=str(exc))
        self.progress("done", stack, "failed")
        return StackRun(
            TenantResult(
                stack,
                op.value,
                Result.FAILED,
                wave,
                detail=report_line(exc),
                attempts=attempts,
                duration_s=time.monotonic() - started,
            )
        )

    def _succeeded(
        self, outcome: StackOutcome, options: RolloutOptions, wave: int | None, attempts: int, started: float
    ) -> StackRun:
        stack, op = outcome.stack, options.operation
        bundle_hash = outcome.outputs.get(output_keys.BUNDLE_HASH)
        bundle_hash = bundle_hash if isinstance(bundle_hash, str) else None
        result, detail = Result.OK, ""
        outputs: dict[str, Any] = {}
        pending: DeployedRecord | None = None
        if op is Operation.UP:
            outputs = {**outcome.outputs, output_keys.BUNDLE_HASH: bundle_hash}
            try:
                # The old record no longer describes the stack; the new one waits for the gate.
                self.store.invalidate(stack)
                pending = record_for(stack, outputs, None, self.desired(stack))
            except (EdgeError, OSError) as exc:
                detail = f"deployed, but its record cannot be written ({report_line(exc, 160)})"
        elif op is Operation.DESTROY:
            self.store.forget(stack)
            if outcome.kept:
                detail = "kept protected " + ", ".join(f"{k.kind} {k.name}" for k in outcome.kept)
        if outcome.drift is not None:
            self.store.put_drift(stack, outcome.drift)
            result = Result.DRIFTED if outcome.drift.drifted else Result.NO_DRIFT
            detail = outcome.drift.describe()
        self.note(stack, op.value, result.value, bundle_hash=bundle_hash, detail=detail or None)
        self.progress("done", stack, result.value)
        tenant = TenantResult(
            stack,
            op.value,
            result,
            wave,
            bundle_hash,
            detail,
            outcome.changes,
            attempts,
            time.monotonic() - started,
            outcome.advice,
        )
        return StackRun(tenant, outputs, pending)

    def note(
        self, stack: str, operation: str, result: str, *, bundle_hash: str | None = None, detail: str | None = None
    ) -> None:
        if self.audit is not None:
            tenant = None if stack == "fleet" else tenant_of(stack)
            self.audit.record(
                stack=stack, tenant=tenant, operation=operation, result=result, bundle_hash=bundle_hash, detail=detail
            )


def not_run(stack: str, options: RolloutOptions, wave: int | None, reason: str | None) -> StackRun:
    return StackRun(TenantResult(stack, options.operation.value, Result.NOT_RUN, wave, detail=f"not run: {reason}"))


def record_for(stack: str, outputs: Mapping[str, Any], config_digest: str | None, desired: Desired) -> DeployedRecord:
    """The record of a deployment from its outputs; `config_digest` None: the current stack file's."""
    bundle_hash = outputs.get(output_keys.BUNDLE_HASH)
    version = outputs.get(output_keys.CONFIG_VERSION)
    identity = outputs.get(output_keys.CONFIG_IDENTITY)
    url = outputs.get(output_keys.HEALTH_URL)
    return DeployedRecord(
        stack=stack,
        bundle_hash=bundle_hash if isinstance(bundle_hash, str) else None,
        config_version=version if isinstance(version, int) else None,
        config_identity=identity if isinstance(identity, str) else None,
        health_url=url if isinstance(url, str) else None,
        config_digest=config_digest or desired.config_digest,
        program_digest=desired.program_digest,
        render_digest=desired.render_digest,
        state_fingerprint=None,
        updated_at=datetime.now(UTC),
    )
