"""The rollout's steps done in this process: the embedded engine's, and what a cluster worker runs.

`StackRunner` runs operations; this adds what an `up` needs around them: change detection and the
never-backwards check, the health gate's probes, the records written after the gate, and rollbacks.
The async methods are the `RolloutSteps` port for the embedded engine (they never suspend); the
plain ones are what the cluster engine's activities call on a worker.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.config.tenant_config import TENANT_KEY
from orchestrator.core import outputs as output_keys
from orchestrator.core.crypto import MAX_CONFIG_VERSION
from orchestrator.core.errors import EdgeError, SetupError
from orchestrator.core.health import HealthCheck, HealthTarget
from orchestrator.core.masking import report_line
from orchestrator.core.names import stack_file, tenant_of
from orchestrator.fleet.changes import Decision, Desired, decide
from orchestrator.fleet.ports import DeployedRecord, VersionFacts
from orchestrator.fleet.report import Result, RolloutOptions, TenantResult
from orchestrator.fleet.runner import StackRunner, record_for
from orchestrator.fleet.steps import RollbackAsk, RollbackRun, WaveRun


def rollback_refusal(good: DeployedRecord | None, current: Desired) -> str | None:
    """Why a tenant must not be rolled back to its last good deployment, or None.

    Only honest when this run's code is the code of the last good deployment: the rollback
    re-renders the old stack file with the current program. When the digests differ, the tenant
    is not touched and the report says to redeploy the previous commit.
    """
    if good is None:
        return "no last good deployment recorded; nothing to roll back to"
    if (good.program_digest, good.render_digest) != (current.program_digest, current.render_digest):
        return "rollback impossible: code changed since last good; redeploy the previous commit"
    return None


def version_refusal(stack: str, facts: VersionFacts, *, allow_rollback: bool = False) -> str | None:
    """Never backwards and no other content under a deployed version, on the fleet's side: why `up`
    must not deploy the stack file's config_version, or None.

    The Worker refuses a config older than the newest it served, and one whose version it holds
    with other content (`version_conflict`; `orchestrator.core.config_match` decides "other" as the
    Worker does); either way the tenant reports degraded (docs/contract.md, "Never backwards").
    Going back is a mistake unless asked for (`allow_rollback`); other content under a version
    already deployed never helps: the Worker keeps the payload it holds, so it is always refused.
    """
    wanted, deployed = facts.wanted, facts.deployed
    if wanted is None:
        return None
    if facts.wanted_identity is not None:
        for version, identity in facts.deployed_identities:
            if version == wanted and identity != facts.wanted_identity:
                above = max(wanted, deployed or wanted)
                return (
                    f"stack {stack}: tenant {tenant_of(stack)}, {stack_file(Path(), stack)}: {TENANT_KEY}.config "
                    f"differs from the config deployed under {TENANT_KEY}.config_version {wanted}, the version the "
                    "file still says; the Worker refuses other content under a version it holds (version_conflict) "
                    f"and the tenant would be degraded: set config_version above {above} for this change"
                )
    if allow_rollback or deployed is None or wanted >= deployed:
        return None
    return (
        f"stack {stack}: {TENANT_KEY}.config_version is {wanted}, below the deployed {deployed}; the Worker "
        f"never goes backwards: set config_version above {deployed} (an older config re-issued under a new "
        "version), or pass --allow-config-rollback to deploy it anyway (the edge then reports degraded)"
    )


class LocalSteps(StackRunner):
    """`StackRunner` plus the rest of a rollout's steps, done here."""

    # -- the plain steps (also what a cluster worker's activities run) -------------------------

    def plan_stacks(self, stacks: Sequence[str], options: RolloutOptions) -> dict[str, TenantResult | None]:
        """Per stack: None when it must be deployed, else its result (unchanged, or failed and why)."""
        out: dict[str, TenantResult | None] = {}
        refreshed: list[DeployedRecord] = []
        for stack in stacks:
            try:
                decision = self._decide(stack, options.force)
            except EdgeError as exc:
                out[stack] = TenantResult(stack, "up", Result.FAILED, detail=report_line(exc))
                self.note(stack, "up", "failed", detail=str(exc))
                continue
            if decision.changed:
                refusal = self._version_refusal(stack, options)
                if refusal is not None:
                    out[stack] = TenantResult(stack, "up", Result.FAILED, detail=report_line(refusal))
                    self.note(stack, "up", "failed", detail=refusal)
                    continue
                out[stack] = None
                continue
            if decision.refreshed is not None:
                refreshed.append(decision.refreshed)
            out[stack] = TenantResult(stack, "up", Result.UNCHANGED, detail=decision.reason)
        if refreshed:
            # In one batch (one sync for all of them, not two fsyncs each): after a change to a
            # render input this is every tenant. A failure only costs a re-render next run.
            with contextlib.suppress(EdgeError, OSError):
                self.store.put_many(refreshed)
        return out

    def health_checks(self, targets: Sequence[HealthTarget], operation: str) -> list[HealthCheck]:
        if not targets:
            return []
        checks = list(self.gate(targets).checks)
        for check in checks:
            self.note(
                check.target.stack,
                operation,
                "ok" if check.ok else "failed",
                bundle_hash=check.target.bundle_hash,
                detail=check.reason,
            )
        return checks

    def commit_records(self, records: Sequence[DeployedRecord], *, good: bool = True) -> dict[str, str]:
        """Write the records of deployments that passed their gate; the ones not written, and why.

        `good` (a wave's deployments): keep them as last good too, the whole wave in one batch (one
        sync, not two fsyncs per file). Not `good` (healthy rollbacks): one record at a time.
        """
        if not records:
            return {}
        if good:
            try:
                self.store.put_many(records, good=True)
            except (EdgeError, OSError) as exc:
                # Deployed and healthy; only the change-detection records are missing: a redeploy later.
                return dict.fromkeys((r.stack for r in records), report_line(exc, 160))
            return {}
        notes: dict[str, str] = {}
        for record in records:
            try:
                self.store.put(record)
            except (EdgeError, OSError) as exc:
                notes[record.stack] = report_line(exc, 160)
        return notes

    def rollback_one(self, ask: RollbackAsk) -> RollbackRun:
        """Re-apply one tenant's last good deployment, unless `rollback_refusal` says no.

        A rollback rolls forward where the up it undoes deployed a higher config_version: the last
        good config is re-issued above it (`forward_version`), so the Worker adopts it.
        """
        previous = ask.previous
        stack = previous.stack

        def refuse(why: str) -> RollbackRun:
            self.note(stack, "rollback", "failed", detail=why)
            detail = f"{previous.detail}; rollback: {why}"
            return RollbackRun(replace(previous, result=Result.ROLLBACK_FAILED, detail=detail))

        try:
            good = self.store.last_good(stack)
            current = self.desired(stack)
            refusal = rollback_refusal(good, current)
            if refusal is not None or good is None:
                return refuse(refusal or "")
            version = self.forward_version(stack, good, ask.deployed)
            outcome = self.executor.rollback(stack, version)
        except Exception as exc:  # one tenant's failed rollback must not stop the others'
            return refuse(report_line(exc))
        self.store.invalidate(stack)
        # Re-issued, the deployed file is no file of the registry: the next up always sees a change.
        digest = good.config_digest if version is None else f"{good.config_digest}+v{version}"
        record = record_for(stack, outcome.outputs, digest, current)
        detail = f"{previous.detail}; re-applied last good ({(record.bundle_hash or '?')[:12]})"
        if version is not None:
            detail += (
                f" re-issued as config_version {version}, above the version this up deployed (the Worker "
                f"never goes backwards); the next up needs clawdbot:tenant.config_version above {version}"
            )
        result = replace(previous, result=Result.ROLLED_BACK, bundle_hash=record.bundle_hash, detail=detail)
        return RollbackRun(result, outcome.outputs, record)

    def forward_version(self, stack: str, good: DeployedRecord, deployed: Mapping[str, Any]) -> int | None:
        """The config_version to re-issue the last good stack file under, or None to apply it as it was.

        The Worker refuses a config below the highest version it adopted (docs/contract.md, "Never
        backwards"), and the up being rolled back (`deployed`: its outputs) may have deployed a higher
        one than the last good: then the rollback rolls forward, the old config under a version above
        everything deployed.
        """
        if good.config_version is None:
            return None  # a record without the output: nothing to compare with, apply it as it was
        seen: list[object] = [good.config_version, deployed.get(output_keys.CONFIG_VERSION)]
        if self.versions is not None:
            seen.append(self.versions(stack).deployed)
        highest = max(v for v in seen if isinstance(v, int) and not isinstance(v, bool))
        if highest <= good.config_version:
            return None
        if highest >= MAX_CONFIG_VERSION:
            raise EdgeError(
                f"stack {stack}: config_version {highest} is deployed; there is no higher one to roll forward to"
            )
        return highest + 1

    # -- the RolloutSteps port, for the embedded engine (never suspends) -----------------------

    def now(self) -> float:
        return time.monotonic()

    async def record(
        self, stack: str, operation: str, result: str, *, bundle_hash: str | None = None, detail: str | None = None
    ) -> None:
        self.note(stack, operation, result, bundle_hash=bundle_hash, detail=detail)

    async def prepare(self, options: RolloutOptions) -> None:
        """Once per run, before the first stack starts (never when nothing runs): the executor's setup.

        N engines fetching one missing plugin at once race, so plugins are installed here, not per stack.
        """
        try:
            self.executor.prepare()
        except SetupError as exc:
            self.note("fleet", options.operation.value, "failed", detail=str(exc))
            raise
        self.progress("plugins", None, "the provider plugins of the installed SDKs are installed")

    async def cancelled_now(self) -> bool:
        return self.cancelled()

    async def plan(self, stacks: Sequence[str], options: RolloutOptions) -> Mapping[str, TenantResult | None]:
        return self.plan_stacks(stacks, options)

    async def run_stacks(self, stacks: Sequence[str], options: RolloutOptions, wave: int | None) -> WaveRun:
        return self.run_wave(stacks, options, wave)

    async def gate_health(self, targets: Sequence[HealthTarget], operation: str) -> Sequence[HealthCheck]:
        return self.health_checks(targets, operation)

    async def commit(self, records: Sequence[DeployedRecord]) -> Mapping[str, str]:
        return self.commit_records(records)

    async def rollback(self, asks: Sequence[RollbackAsk], options: RolloutOptions) -> Sequence[RollbackRun]:
        workers = max(1, min(options.concurrency, len(asks)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rollback") as pool:
            return list(pool.map(self.rollback_one, asks))

    async def keep(self, records: Sequence[DeployedRecord]) -> Mapping[str, str]:
        return self.commit_records(records, good=False)

    # -- change detection -----------------------------------------------------------------

    def _version_refusal(self, stack: str, options: RolloutOptions) -> str | None:
        """Why `up` must not deploy this stack's config_version, or None (see `version_refusal`)."""
        if self.versions is None:
            return None
        try:
            facts = self.versions(stack)
        except (EdgeError, OSError, ValueError) as exc:  # an unreadable state file: never guess
            return f"stack {stack}: cannot tell the deployed config_version ({report_line(exc, 160)})"
        return version_refusal(stack, facts, allow_rollback=options.allow_config_rollback)

    def _decide(self, stack: str, force: bool) -> Decision:
        if force:
            return Decision(True, "forced")
        desired = self.desired(stack)
        return decide(
            desired, self.store.get(stack), state_changed=self.store.state_changed, render=lambda: self.render(stack)
        )
