"""Many tenant stacks: `up` as waves with a canary and a health gate, bounded concurrency.

Concurrency model: **threads in one process**, not a process per stack. The evidence (fleet-lessons):

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

import contextlib
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from orchestrator.core import outputs as output_keys
from orchestrator.core.crypto import MAX_CONFIG_VERSION
from orchestrator.core.errors import EdgeError, SetupError
from orchestrator.core.health import HealthCheck, HealthTarget
from orchestrator.core.names import tenant_of
from orchestrator.fleet.changes import Decision, decide
from orchestrator.fleet.ports import (
    DeployedRecord,
    Operation,
    StackOutcome,
)
from orchestrator.fleet.report import FleetReport, Result, RolloutOptions, TenantResult
from orchestrator.fleet.runner import CANCELLED, StackRunner, _detail, _record_for


def plan_waves(stacks: Sequence[str], wave_size: int, canary: str | None) -> list[list[str]]:
    """Canary alone first, then waves of `wave_size` in registry order."""
    if not stacks:
        return []
    first = canary if canary is not None and canary in stacks else stacks[0]
    rest = [s for s in stacks if s != first]
    return [[first], *(rest[i : i + wave_size] for i in range(0, len(rest), wave_size))]


class Fleet(StackRunner):
    """Runs one operation over many stacks; `up` rolls out in waves behind the health gate."""

    # -- public ---------------------------------------------------------------------------

    def run(self, stacks: Sequence[str], options: RolloutOptions) -> FleetReport:
        started = time.monotonic()
        self._record("fleet", options.operation.value, "started", detail=f"{len(stacks)} stacks")
        if options.operation is Operation.UP:
            report = self._rollout(list(stacks), options)
        else:
            self._prepare(options)
            results, stop = self._run_all(list(stacks), options, wave=None)
            report = FleetReport(options.operation.value, tuple(results), stop is not None, stop)
        report = replace(report, duration_s=time.monotonic() - started)
        self._record(
            "fleet",
            options.operation.value,
            "halted" if report.halted else "finished",
            detail=report.halt_reason or ", ".join(f"{k}={v}" for k, v in sorted(report.counts().items())),
        )
        return report

    def _prepare(self, options: RolloutOptions) -> None:
        """Once per run, before the first stack starts (never when nothing runs): the executor's setup.

        N engines fetching one missing plugin at once race, so plugins are installed here, not per stack.
        """
        try:
            self.executor.prepare()
        except SetupError as exc:
            self._record("fleet", options.operation.value, "failed", detail=str(exc))
            raise
        self.progress("plugins", None, "the provider plugins of the installed SDKs are installed")

    # -- rollout (up) ---------------------------------------------------------------------

    def _rollout(self, stacks: list[str], options: RolloutOptions) -> FleetReport:
        results: dict[str, TenantResult] = {}
        changed: list[str] = []
        refreshed: list[DeployedRecord] = []
        for stack in stacks:
            try:
                decision = self._decide(stack, options.force)
            except EdgeError as exc:
                results[stack] = TenantResult(stack, "up", Result.FAILED, detail=_detail(exc))
                self._record(stack, "up", "failed", detail=str(exc))
                continue
            if decision.changed:
                refusal = self._goes_back(stack, options)
                if refusal is not None:
                    results[stack] = TenantResult(stack, "up", Result.FAILED, detail=_detail(refusal))
                    self._record(stack, "up", "failed", detail=refusal)
                    continue
                changed.append(stack)
                continue
            if decision.refreshed is not None:
                refreshed.append(decision.refreshed)
            results[stack] = TenantResult(stack, "up", Result.UNCHANGED, detail=decision.reason)
            self.progress("skip", stack, decision.reason)
        if refreshed:
            # In one batch (one sync for all of them, not two fsyncs each): after a change to a
            # render input this is every tenant. A failure only costs a re-render next run.
            with contextlib.suppress(EdgeError, OSError):
                self.store.put_many(refreshed)
        halted, reason = False, None
        if any(r.result is Result.FAILED for r in results.values()) and not options.continue_on_error:
            halted, reason = True, "a tenant cannot be deployed as configured; fix it or pass --continue-on-error"
        waves = [] if halted else plan_waves(changed, options.wave_size, options.canary)
        if waves:
            self._prepare(options)
        for number, wave in enumerate(waves):
            if self.cancelled():
                halted, reason = True, CANCELLED
                self.progress("halt", None, reason)
                break
            self.progress(
                "wave",
                None,
                f"wave {number} ({'canary' if number == 0 else len(wave)}): {', '.join(map(tenant_of, wave))}",
            )
            ran, stop = self._run_all(wave, options, wave=number)
            wave_results = {r.stack: r for r in ran}
            failed = [s for s, r in wave_results.items() if r.result is not Result.OK]
            passed = [s for s, r in wave_results.items() if r.result is Result.OK]
            gate_failed: list[str] = []
            if options.health_gate and passed:
                wave_results, gate_failed = self._gate(wave_results, passed, number)
            results.update(wave_results)
            if stop is not None:
                halted, reason = True, stop
            elif gate_failed:
                halted, reason = True, f"health gate failed in wave {number}: {', '.join(map(tenant_of, gate_failed))}"
            elif failed and (number == 0 or not options.continue_on_error):
                what = "canary" if number == 0 else f"wave {number}"
                halted, reason = True, f"{what} failed: {', '.join(map(tenant_of, failed))}"
            if halted and options.rollback and gate_failed:
                results.update(self._rollback(wave, results, number, options))
            else:
                # Only now, healthy: the records that let the next run skip the tenants, and last good.
                results.update(self._commit([results[s] for s in passed if s not in gate_failed]))
            if halted:
                self.progress("halt", None, reason or "")
                break
        for stack in changed:
            if stack not in results:
                results[stack] = TenantResult(stack, "up", Result.NOT_RUN, detail="rollout halted before this wave")
        ordered = tuple(results[s] for s in stacks if s in results)
        return FleetReport("up", ordered, halted, reason, waves=len(waves))

    def _goes_back(self, stack: str, options: RolloutOptions) -> str | None:
        """Never backwards, on the fleet's side: why `up` must not deploy this stack, or None.

        The Worker refuses to serve a config older than the newest it served and reports degraded
        (docs/contract.md, "Never backwards"); deploying one is a mistake unless asked for.
        """
        if self.versions is None or options.allow_config_rollback:
            return None
        try:
            wanted, deployed = self.versions(stack)
        except (EdgeError, OSError, ValueError) as exc:  # an unreadable state file: never guess
            return f"stack {stack}: cannot tell the deployed config_version ({_detail(exc, 160)})"
        if wanted is None or deployed is None or wanted >= deployed:
            return None
        return (
            f"stack {stack}: clawdbot:tenant.config_version is {wanted}, below the deployed {deployed}; the Worker "
            f"never goes backwards: set config_version above {deployed} (an older config re-issued under a new "
            "version), or pass --allow-config-rollback to deploy it anyway (the edge then reports degraded)"
        )

    def _forward_version(self, stack: str, good: DeployedRecord) -> int | None:
        """The config_version to re-issue the last good stack file under, or None to apply it as it was.

        The Worker refuses a config below the highest version it adopted (docs/contract.md, "Never
        backwards"), and the up being rolled back may have deployed a higher one than the last good:
        then the rollback rolls forward, the old config under a version above everything deployed.
        """
        if good.config_version is None:
            return None  # a record without the output: nothing to compare with, apply it as it was
        seen: list[object] = [good.config_version, self._outputs.get(stack, {}).get(output_keys.CONFIG_VERSION)]
        if self.versions is not None:
            seen.append(self.versions(stack)[1])
        highest = max(v for v in seen if isinstance(v, int) and not isinstance(v, bool))
        if highest <= good.config_version:
            return None
        if highest >= MAX_CONFIG_VERSION:
            raise EdgeError(
                f"stack {stack}: config_version {highest} is deployed; there is no higher one to roll forward to"
            )
        return highest + 1

    def _decide(self, stack: str, force: bool) -> Decision:
        if force:
            return Decision(True, "forced")
        desired = self.desired(stack)
        return decide(
            desired, self.store.get(stack), state_changed=self.store.state_changed, render=lambda: self.render(stack)
        )

    def _commit(self, healthy: Sequence[TenantResult]) -> dict[str, TenantResult]:
        """These deployments passed their gate: write their records and keep them as the last good
        ones, for the whole wave in one batch (one sync, not two fsyncs per file)."""
        with self._lock:
            records = [r for r in (self._pending.pop(t.stack, None) for t in healthy) if r is not None]
        if not records:
            return {}
        try:
            self.store.put_many(records, good=True)
        except (EdgeError, OSError) as exc:
            # Deployed and healthy; only the change-detection records are missing: a redeploy later.
            note = f"deployed, but its record was not written ({_detail(exc, 160)})"
            unwritten = {r.stack for r in records}
            return {
                t.stack: replace(t, detail="; ".join(d for d in (t.detail, note) if d))
                for t in healthy
                if t.stack in unwritten
            }
        return {}

    def _gate(
        self, wave_results: dict[str, TenantResult], passed: list[str], number: int
    ) -> tuple[dict[str, TenantResult], list[str]]:
        targets = [t for t in (self._target(s, self._outputs.get(s, {})) for s in passed) if t is not None]
        self.progress("gate", None, f"wave {number}: polling health of {len(targets)} tenants")
        failed = []
        for check in self._checks(targets, "health-gate"):
            if not check.ok:
                stack = check.target.stack
                failed.append(stack)
                wave_results[stack] = replace(wave_results[stack], result=Result.UNHEALTHY, detail=check.reason)
        return wave_results, failed

    def _checks(self, targets: Sequence[HealthTarget], operation: str) -> list[HealthCheck]:
        if not targets:
            return []
        checks = list(self.gate(targets).checks)
        for check in checks:
            self._record(
                check.target.stack,
                operation,
                "ok" if check.ok else "failed",
                bundle_hash=check.target.bundle_hash,
                detail=check.reason,
            )
        return checks

    @staticmethod
    def _target(stack: str, outputs: Mapping[str, Any]) -> HealthTarget | None:
        url = outputs.get(output_keys.HEALTH_URL)
        if not isinstance(url, str):
            return None  # no hostname to probe: nothing to gate on for this tenant
        version = outputs.get(output_keys.CONFIG_VERSION)
        bundle_hash = outputs.get(output_keys.BUNDLE_HASH)
        return HealthTarget(
            stack=stack,
            tenant=tenant_of(stack),
            url=url,
            bundle_hash=bundle_hash if isinstance(bundle_hash, str) else None,
            config_version=version if isinstance(version, int) else None,
        )

    def _rollback(
        self, wave: list[str], results: Mapping[str, TenantResult], number: int, options: RolloutOptions
    ) -> dict[str, TenantResult]:
        """Re-apply each wave tenant's last good stack file, then gate the wave again.

        A rollback rolls forward where the up it undoes deployed a higher config_version: the last
        good config is re-issued above it (`_forward_version`), so the Worker adopts it.

        Only honest when this run's code is the code of the last good deployment: the rollback
        re-renders the old stack file with the current program. When the digests differ, the
        tenant is not touched and the report says to redeploy the previous commit.
        """
        rolled: dict[str, tuple[TenantResult, StackOutcome, DeployedRecord]] = {}
        out: dict[str, TenantResult] = {}

        def refuse(previous: TenantResult, why: str) -> TenantResult:
            self._record(previous.stack, "rollback", "failed", detail=why)
            return replace(previous, result=Result.ROLLBACK_FAILED, detail=f"{previous.detail}; rollback: {why}")

        def one(stack: str) -> None:
            previous = results[stack]
            try:
                good = self.store.last_good(stack)
                if good is None:
                    out[stack] = refuse(previous, "no last good deployment recorded; nothing to roll back to")
                    return
                current = self.desired(stack)
                if (good.program_digest, good.render_digest) != (current.program_digest, current.render_digest):
                    out[stack] = refuse(
                        previous, "rollback impossible: code changed since last good; redeploy the previous commit"
                    )
                    return
                version = self._forward_version(stack, good)
                outcome = self.executor.rollback(stack, version)
            except Exception as exc:  # one tenant's failed rollback must not stop the others'
                out[stack] = refuse(previous, _detail(exc))
                return
            self.store.invalidate(stack)
            # Re-issued, the deployed file is no file of the registry: the next up always sees a change.
            digest = good.config_digest if version is None else f"{good.config_digest}+v{version}"
            record = _record_for(stack, outcome.outputs, digest, current)
            detail = f"{previous.detail}; re-applied last good ({(record.bundle_hash or '?')[:12]})"
            if version is not None:
                detail += (
                    f" re-issued as config_version {version}, above the version this up deployed (the Worker "
                    f"never goes backwards); the next up needs clawdbot:tenant.config_version above {version}"
                )
            result = replace(previous, result=Result.ROLLED_BACK, bundle_hash=record.bundle_hash, detail=detail)
            with self._lock:
                rolled[stack] = (result, outcome, record)

        self.progress("rollback", None, f"wave {number}: re-applying the last good deployment")
        with ThreadPoolExecutor(max_workers=max(1, min(options.concurrency, len(wave)))) as pool:
            list(pool.map(one, wave))
        order = [s for s in wave if s in rolled]
        targets = [t for t in (self._target(s, rolled[s][1].outputs) for s in order) if t is not None]
        if options.health_gate and targets:
            self.progress("gate", None, f"wave {number}: polling health of {len(targets)} rolled-back tenants")
        checks = {c.target.stack: c for c in (self._checks(targets, "rollback-gate") if options.health_gate else [])}
        for stack in order:
            result, _, record = rolled[stack]
            check = checks.get(stack)
            if check is not None and not check.ok:
                detail = f"{result.detail}; still unhealthy after the rollback: {check.reason}"
                self._record(stack, "rollback", "unhealthy", bundle_hash=record.bundle_hash, detail=check.reason)
                out[stack] = replace(result, result=Result.ROLLBACK_FAILED, detail=detail)
                continue
            try:
                self.store.put(record)
            except (EdgeError, OSError) as exc:
                result = replace(result, detail=f"{result.detail}; record not written ({_detail(exc, 160)})")
            self._record(stack, "rollback", "rolled-back", bundle_hash=record.bundle_hash)
            out[stack] = result
        return out
