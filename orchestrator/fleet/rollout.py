"""Many tenant stacks: `up` as waves with a canary and a health gate, bounded concurrency.

`rollout` is the one rollout definition, for both engines: which stacks change, the waves, the gate
verdicts, when to halt and when to roll back. It does no I/O and reads no clock; it awaits the
`RolloutSteps` port (`orchestrator.fleet.steps`). The embedded engine (`Fleet`, below) implements the
steps in this process and drives the coroutine without an event loop (its steps never suspend); the
cluster engine (`orchestrator.cluster`) awaits the same coroutine in a Temporal workflow, its steps
being activities on any node. So this module must stay deterministic: no I/O, no time, no randomness.

Concurrency model of the embedded engine: **threads in one process**, not a process per stack. The
evidence (fleet-lessons):

- #1/#2 (pulumi#6052, #7782): inline programs shared global runtime state. The SDK we pin (3.272) keeps
  SETTINGS/ROOT/CONFIG in ContextVars and runs each inline program in `contextvars.copy_context()`
  (`pulumi/automation/_server.py`), so concurrent programs in one process no longer see each other.
  The remaining gRPC `UNAVAILABLE` hiccups are retried (`TransientStackError`) and concurrency is capped.
- #3 (pulumi#19855): the 16-operation cap of inline programs is fixed in the pinned SDK.
- #4/#5 (workspace races): each stack has its own persistent work dir (orchestrator.engine.stacks).
- #6 (parallel `config set`): we never set config through the CLI; the stack file is copied in.
- #7 (plugin installs racing): plugins are installed once, before any stack runs, not per stack.
- #9 (import cost): importing `pulumi_cloudflare` costs ~1.7 s and ~165 MB RSS here (measured,
  `python -c "import pulumi_cloudflare"`). A process per stack pays that 200 times; a warm pool
  pays it per worker and multiplies the memory on a 2-core VPS. Threads pay it once.
- The heavy work runs in the CLI, engine and provider *processes* the SDK spawns anyway; our Python
  side mostly waits on them and on Cloudflare's 1,200 req / 5 min budget, which caps useful
  concurrency at a handful of stacks. The GIL is not the bottleneck; the API budget is.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from orchestrator.core import outputs as output_keys
from orchestrator.core.health import HealthCheck, HealthTarget
from orchestrator.core.names import tenant_of
from orchestrator.fleet.local_steps import LocalSteps
from orchestrator.fleet.ports import DeployedRecord, Operation
from orchestrator.fleet.report import FleetReport, Result, RolloutOptions, TenantResult
from orchestrator.fleet.runner import CANCELLED
from orchestrator.fleet.steps import RollbackAsk, RollbackRun, RolloutSteps

T = TypeVar("T")


def plan_waves(stacks: Sequence[str], wave_size: int, canary: str | None) -> list[list[str]]:
    """Canary alone first, then waves of `wave_size` in registry order."""
    if not stacks:
        return []
    first = canary if canary is not None and canary in stacks else stacks[0]
    rest = [s for s in stacks if s != first]
    return [[first], *(rest[i : i + wave_size] for i in range(0, len(rest), wave_size))]


def health_target(stack: str, outputs: Mapping[str, Any]) -> HealthTarget | None:
    """What the gate probes for a deployed stack; None without a health URL (nothing to gate on)."""
    url = outputs.get(output_keys.HEALTH_URL)
    if not isinstance(url, str):
        return None
    version = outputs.get(output_keys.CONFIG_VERSION)
    bundle_hash = outputs.get(output_keys.BUNDLE_HASH)
    return HealthTarget(
        stack=stack,
        tenant=tenant_of(stack),
        url=url,
        bundle_hash=bundle_hash if isinstance(bundle_hash, str) else None,
        config_version=version if isinstance(version, int) else None,
    )


def gate_verdict(
    results: Mapping[str, TenantResult], checks: Sequence[HealthCheck]
) -> tuple[dict[str, TenantResult], list[str]]:
    """The wave's results with every failed check marked unhealthy, and the stacks that failed."""
    out, failed = dict(results), []
    for check in checks:
        if not check.ok:
            stack = check.target.stack
            failed.append(stack)
            out[stack] = replace(out[stack], result=Result.UNHEALTHY, detail=check.reason)
    return out, failed


def halt_reason(
    number: int, failed: Sequence[str], gate_failed: Sequence[str], stop: str | None, options: RolloutOptions
) -> str | None:
    """Why the rollout stops after wave `number`, or None: a stop, a failed gate, a failed canary or wave."""
    if stop is not None:
        return stop
    if gate_failed:
        return f"health gate failed in wave {number}: {', '.join(map(tenant_of, gate_failed))}"
    if failed and (number == 0 or not options.continue_on_error):
        what = "canary" if number == 0 else f"wave {number}"
        return f"{what} failed: {', '.join(map(tenant_of, failed))}"
    return None


def _noted(result: TenantResult, note: str) -> TenantResult:
    return replace(result, detail="; ".join(d for d in (result.detail, note) if d))


async def rollout(steps: RolloutSteps, stacks: Sequence[str], options: RolloutOptions) -> FleetReport:
    """One fleet run: every stack through `options.operation`; an `up` in waves behind the gate."""
    started = steps.now()
    operation = options.operation.value
    await steps.record("fleet", operation, "started", detail=f"{len(stacks)} stacks")
    if options.operation is Operation.UP:
        report = await _up(steps, list(stacks), options)
    else:
        await steps.prepare(options)
        batch = await steps.run_stacks(list(stacks), options, None)
        results = tuple(run.result for run in batch.runs)
        report = FleetReport(operation, results, batch.stop is not None, batch.stop)
    report = replace(report, duration_s=steps.now() - started)
    await steps.record(
        "fleet",
        operation,
        "halted" if report.halted else "finished",
        detail=report.halt_reason or ", ".join(f"{k}={v}" for k, v in sorted(report.counts().items())),
    )
    return report


async def _up(steps: RolloutSteps, stacks: list[str], options: RolloutOptions) -> FleetReport:
    results: dict[str, TenantResult] = {}
    changed: list[str] = []
    planned = await steps.plan(stacks, options)
    for stack in stacks:
        verdict = planned[stack]
        if verdict is None:
            changed.append(stack)
            continue
        results[stack] = verdict
        if verdict.result is Result.UNCHANGED:
            steps.progress("skip", stack, verdict.detail)
    halted, reason = False, None
    if any(r.result is Result.FAILED for r in results.values()) and not options.continue_on_error:
        halted, reason = True, "a tenant cannot be deployed as configured; fix it or pass --continue-on-error"
    waves = [] if halted else plan_waves(changed, options.wave_size, options.canary)
    if waves:
        await steps.prepare(options)  # only when a stack will run: nothing to do needs no engine
    for number, wave in enumerate(waves):
        if await steps.cancelled_now():
            halted, reason = True, CANCELLED
            steps.progress("halt", None, reason)
            break
        label = "canary" if number == 0 else len(wave)
        steps.progress("wave", None, f"wave {number} ({label}): {', '.join(map(tenant_of, wave))}")
        batch = await steps.run_stacks(wave, options, wave=number)
        runs = {run.result.stack: run for run in batch.runs}
        wave_results = {stack: run.result for stack, run in runs.items()}
        failed = [s for s, r in wave_results.items() if r.result is not Result.OK]
        passed = [s for s, r in wave_results.items() if r.result is Result.OK]
        gate_failed: list[str] = []
        if options.health_gate and passed:
            targets = [t for t in (health_target(s, runs[s].outputs) for s in passed) if t is not None]
            steps.progress("gate", None, f"wave {number}: polling health of {len(targets)} tenants")
            checks = await steps.gate_health(targets, "health-gate") if targets else []
            wave_results, gate_failed = gate_verdict(wave_results, checks)
        results.update(wave_results)
        reason = halt_reason(number, failed, gate_failed, batch.stop, options)
        halted = reason is not None
        if halted and options.rollback and gate_failed:
            asks = [RollbackAsk(results[s], runs[s].outputs) for s in wave]
            results.update(await _rollback(steps, asks, number, options))
        else:
            # Only now, healthy: the record that lets the next run skip the tenant, and last good.
            healthy = [runs[s] for s in passed if s not in gate_failed]
            notes = await steps.commit([r.pending for r in healthy if r.pending is not None])
            for stack, note in notes.items():
                results[stack] = _noted(results[stack], f"deployed, but its record was not written ({note})")
        if halted:
            steps.progress("halt", None, reason or "")
            break
    for stack in changed:
        if stack not in results:
            results[stack] = TenantResult(stack, "up", Result.NOT_RUN, detail="rollout halted before this wave")
    ordered = tuple(results[s] for s in stacks if s in results)
    return FleetReport("up", ordered, halted, reason, waves=len(waves))


async def _rollback(
    steps: RolloutSteps, asks: list[RollbackAsk], number: int, options: RolloutOptions
) -> dict[str, TenantResult]:
    """Re-apply each wave tenant's last good deployment, then gate the wave again."""
    steps.progress("rollback", None, f"wave {number}: re-applying the last good deployment")
    attempts: Sequence[RollbackRun] = await steps.rollback(asks, options)
    out = {run.result.stack: run.result for run in attempts}
    rolled = [run for run in attempts if run.record is not None]
    targets = [t for t in (health_target(r.result.stack, r.outputs) for r in rolled) if t is not None]
    checks: dict[str, HealthCheck] = {}
    if options.health_gate and targets:
        steps.progress("gate", None, f"wave {number}: polling health of {len(targets)} rolled-back tenants")
        checks = {c.target.stack: c for c in await steps.gate_health(targets, "rollback-gate")}
    healthy: list[DeployedRecord] = []
    for run in rolled:
        assert run.record is not None
        stack, check = run.result.stack, checks.get(run.result.stack)
        if check is not None and not check.ok:
            detail = f"{run.result.detail}; still unhealthy after the rollback: {check.reason}"
            await steps.record(stack, "rollback", "unhealthy", bundle_hash=run.record.bundle_hash, detail=check.reason)
            out[stack] = replace(run.result, result=Result.ROLLBACK_FAILED, detail=detail)
        else:
            healthy.append(run.record)
    notes = await steps.keep(healthy)
    for record in healthy:
        note = notes.get(record.stack)
        if note is not None:
            out[record.stack] = _noted(out[record.stack], f"record not written ({note})")
        await steps.record(record.stack, "rollback", "rolled-back", bundle_hash=record.bundle_hash)
    return out


def drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine whose awaits never suspend (the embedded steps are plain calls): no event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("an embedded rollout step suspended; the embedded engine has no event loop")


class Fleet(LocalSteps):
    """The embedded engine: runs one operation over many stacks in this process (threads)."""

    def run(self, stacks: Sequence[str], options: RolloutOptions) -> FleetReport:
        return drive(rollout(self, stacks, options))
