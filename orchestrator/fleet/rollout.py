"""Many tenant stacks: change detection, waves with a canary and a health gate, bounded concurrency.

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

Change detection never starts the engine: a stack is skipped when its stack file, the fleet-wide
program digest and the rendered bundle equal what the fleet recorded at its last `up` that passed
the health gate, and the state file has not changed since (someone else running `pulumi`
invalidates the record). A deployment that has not passed its gate has no record.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.metadata
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec
from orchestrator.core import outputs as output_keys
from orchestrator.core.drift import DriftReport
from orchestrator.core.errors import EdgeError, SetupError, TransientStackError
from orchestrator.core.health import HealthCheck, HealthTarget
from orchestrator.core.masking import one_line, redact
from orchestrator.core.names import PLATFORM_STACK, stack_file, tenant_of
from orchestrator.fleet.audit import AuditLog
from orchestrator.fleet.ports import (
    DeployedRecord,
    DeployedStore,
    HealthGate,
    KeptResource,
    Operation,
    OpRequest,
    Preflight,
    StackExecutor,
    StackOutcome,
)


@dataclass(frozen=True)
class Desired:
    """What a tenant should look like, as cheap digests (no rendering)."""

    stack: str
    config_digest: str
    program_digest: str
    render_digest: str


@dataclass(frozen=True)
class Rendered:
    bundle_hash: str
    config_version: int


# ---------------------------------------------------------------------------------------------
# Change detection


@dataclass(frozen=True)
class Decision:
    changed: bool
    reason: str
    refreshed: DeployedRecord | None = None
    """Unchanged after a re-render: the record with the current render digest (next run: fast path)."""


def decide(
    desired: Desired,
    record: DeployedRecord | None,
    *,
    state_changed: Callable[[DeployedRecord], bool],
    render: Callable[[], Rendered],
) -> Decision:
    """Does this stack need an `up`? Renders only when nothing cheaper can answer."""
    if record is None:
        return Decision(True, "not deployed by the fleet yet")
    if state_changed(record):
        return Decision(True, "state changed outside the fleet since the last deploy")
    if record.config_digest != desired.config_digest:
        return Decision(True, "stack config changed")
    if record.program_digest != desired.program_digest:
        return Decision(True, "program, components, platform config or provider version changed")
    if record.render_digest == desired.render_digest:
        return Decision(False, "unchanged")
    rendered = render()
    if rendered.bundle_hash != record.bundle_hash or rendered.config_version != record.config_version:
        return Decision(True, "rendered bundle changed")
    refreshed = record.model_copy(update={"render_digest": desired.render_digest})
    return Decision(False, "unchanged (re-rendered: same bundle)", refreshed)


def _label(path: Path, roots: Sequence[Path]) -> str:
    """A path relative to the first root holding it, so moving the checkout redeploys nobody."""
    for index, root in enumerate(roots):
        if path.is_relative_to(root):
            return f"{index}:{path.relative_to(root)}"
    return str(path)


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def tree_digest(paths: Iterable[Path], extra: Iterable[str] = (), roots: Sequence[Path] = ()) -> str:
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        digest.update(_label(path, roots).encode() + b"\0")
        digest.update((file_digest(path) or "missing").encode() + b"\0")
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()


def _files(root: Path, *patterns: str) -> list[Path]:
    return [p for pattern in patterns for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts]


PROGRAM_ENTRY = "orchestrator.program"
CODE_PACKAGES = ("components", "orchestrator")
"""The repo's own packages; everything else the program imports is pinned by version."""


def _module_file(repo_root: Path, name: str) -> Path | None:
    parts = name.split(".")
    if not name or parts[0] not in CODE_PACKAGES:
        return None
    base = repo_root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(tree: ast.AST, package: str) -> Iterable[str]:
    """Every module name an import statement (or a literal `import_module`) may load."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)  # `from pkg import module`
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def program_modules(repo_root: Path, entry: str = PROGRAM_ENTRY) -> list[Path]:
    """The files of every repo module (components/, orchestrator/) that `entry` imports, transitively.

    Read from the source rather than from `sys.modules`: it covers imports inside functions that have
    not run yet, and leaves out modules this process loaded for other reasons (the CLI, the fleet),
    whose edits must not redeploy every tenant. Package `__init__` files count (they run on import).
    """
    found: dict[str, Path] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        path = _module_file(repo_root, name)
        if path is None:
            continue
        found[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        package = name if path.name == "__init__.py" else ".".join(parts[:-1])
        todo.extend(_imported_names(ast.parse(path.read_bytes(), filename=str(path)), package))
    return sorted(found.values())


@dataclass(frozen=True)
class FleetInputs:
    """Fleet-wide digests, computed once per run."""

    program_digest: str
    render_digest: str

    @classmethod
    def compute(cls, project_dir: Path, repo_root: Path) -> FleetInputs:
        versions = [
            f"{pkg}=={importlib.metadata.version(pkg)}" for pkg in ("pulumi", "pulumi-cloudflare", "pulumi-random")
        ]
        # Worker source, templates and the contract shape resources only through the rendered bundle,
        # whose hash the render digest below guards; they need not redeploy everyone by themselves.
        program = [
            *_files(repo_root, "components/**/*.py"),
            *program_modules(repo_root),
            project_dir / "Pulumi.yaml",
            stack_file(project_dir, PLATFORM_STACK),
        ]
        # Generous on purpose: a render-input change only costs a re-render, never a deploy.
        render = _files(
            repo_root, "orchestrator/**/*.py", "worker_src/src/**/*", "worker_src/migrations/*", "contract/*"
        )
        roots = (repo_root, project_dir)
        return cls(tree_digest(program, versions, roots), tree_digest(render, roots=roots))

    def desired(self, project_dir: Path, stack: str) -> Desired:
        path = stack_file(project_dir, stack)
        digest = file_digest(path)
        if digest is None:
            raise EdgeError(f"stack {stack}: no stack file {path}")
        return Desired(stack, digest, self.program_digest, self.render_digest)


def bundle_renderer(project_dir: Path) -> Callable[[str], Rendered]:
    """Render a tenant's bundle with the lead's pure modules (imported on first use)."""
    from orchestrator.core.render import render_bundle

    platform = cache(lambda: load_platform_spec(project_dir))

    def render(stack: str) -> Rendered:
        bundle = render_bundle(load_tenant_spec(project_dir, stack), platform())
        return Rendered(bundle.bundle_hash, bundle.config_version)

    return render


# ---------------------------------------------------------------------------------------------
# Options, results, report


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


def plan_waves(stacks: Sequence[str], wave_size: int, canary: str | None) -> list[list[str]]:
    """Canary alone first, then waves of `wave_size` in registry order."""
    if not stacks:
        return []
    first = canary if canary is not None and canary in stacks else stacks[0]
    rest = [s for s in stacks if s != first]
    return [[first], *(rest[i : i + wave_size] for i in range(0, len(rest), wave_size))]


Progress = Callable[[str, str | None, str], None]
"""(event, stack or None, detail): `start`, `done`, `wave`, `gate`, `halt`, `skip`."""


def _no_progress(event: str, stack: str | None, detail: str) -> None:
    return None


class Fleet:
    """Runs one operation over many stacks. All collaborators are injected (see the ports above)."""

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
        progress: Progress = _no_progress,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.executor = executor
        self.store = store
        self.desired = desired
        self.render = render
        self.gate = gate
        self.audit = audit
        self.preflight = preflight
        self.progress = progress
        self.sleep = sleep
        self._outputs: dict[str, Mapping[str, Any]] = {}
        self._pending: dict[str, DeployedRecord] = {}
        """Records of deployments that have not passed their health gate yet (written after it)."""
        self._lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------

    def run(self, stacks: Sequence[str], options: RolloutOptions) -> FleetReport:
        started = time.monotonic()
        self._record("fleet", options.operation.value, "started", detail=f"{len(stacks)} stacks")
        if options.operation is Operation.UP:
            report = self._rollout(list(stacks), options)
        else:
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

    # -- rollout (up) ---------------------------------------------------------------------

    def _rollout(self, stacks: list[str], options: RolloutOptions) -> FleetReport:
        results: dict[str, TenantResult] = {}
        changed: list[str] = []
        for stack in stacks:
            try:
                decision = self._decide(stack, options.force)
            except EdgeError as exc:
                results[stack] = TenantResult(stack, "up", Result.FAILED, detail=_detail(exc))
                self._record(stack, "up", "failed", detail=str(exc))
                continue
            if decision.changed:
                changed.append(stack)
                continue
            if decision.refreshed is not None:
                with contextlib.suppress(EdgeError, OSError):  # a failure only costs a re-render next run
                    self.store.put(decision.refreshed)
            results[stack] = TenantResult(stack, "up", Result.UNCHANGED, detail=decision.reason)
            self.progress("skip", stack, decision.reason)
        halted, reason = False, None
        if any(r.result is Result.FAILED for r in results.values()) and not options.continue_on_error:
            halted, reason = True, "invalid tenant config; fix it or pass --continue-on-error"
        waves = [] if halted else plan_waves(changed, options.wave_size, options.canary)
        for number, wave in enumerate(waves):
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
                # Only now, healthy: the record that lets the next run skip the tenant, and last good.
                for stack in passed:
                    if stack not in gate_failed:
                        results[stack] = self._commit(results[stack])
            if halted:
                self.progress("halt", None, reason or "")
                break
        for stack in changed:
            if stack not in results:
                results[stack] = TenantResult(stack, "up", Result.NOT_RUN, detail="rollout halted before this wave")
        ordered = tuple(results[s] for s in stacks if s in results)
        return FleetReport("up", ordered, halted, reason, waves=len(waves))

    def _decide(self, stack: str, force: bool) -> Decision:
        if force:
            return Decision(True, "forced")
        desired = self.desired(stack)
        return decide(
            desired, self.store.get(stack), state_changed=self.store.state_changed, render=lambda: self.render(stack)
        )

    def _commit(self, result: TenantResult) -> TenantResult:
        """The deployment passed its gate: write its record and keep it as the last good one."""
        with self._lock:
            record = self._pending.pop(result.stack, None)
        if record is None:
            return result
        try:
            self.store.put(record)
            self.store.mark_good(result.stack)
        except (EdgeError, OSError) as exc:
            # Deployed and healthy; only the change-detection record is missing: a redeploy later.
            note = f"deployed, but its record was not written ({_detail(exc, 160)})"
            return replace(result, detail="; ".join(d for d in (result.detail, note) if d))
        return result

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
                outcome = self.executor.rollback(stack)
            except Exception as exc:  # one tenant's failed rollback must not stop the others'
                out[stack] = refuse(previous, _detail(exc))
                return
            self.store.invalidate(stack)
            record = _record_for(stack, outcome.outputs, good.config_digest, current)
            detail = f"{previous.detail}; re-applied last good ({(record.bundle_hash or '?')[:12]})"
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

    # -- running stacks -------------------------------------------------------------------

    def _run_all(
        self, stacks: list[str], options: RolloutOptions, *, wave: int | None
    ) -> tuple[list[TenantResult], str | None]:
        """Run the stacks with bounded concurrency; a setup error stops the rest (returned as reason)."""
        out: dict[str, TenantResult] = {}
        stop: list[str] = []

        def task(stack: str) -> None:
            if stop:
                return  # halted while queued: reported as not run
            try:
                result = self._run_one(stack, options, wave)
            except SetupError as exc:
                # The VPS cannot run stacks (CLI gone, unsafe modes): every other stack would fail alike.
                reason = f"setup error: {_detail(exc)}"
                self._record(stack, options.operation.value, "failed", detail=str(exc))
                result = TenantResult(stack, options.operation.value, Result.FAILED, wave, detail=_detail(exc))
                with self._lock:
                    stop.append(reason)
            with self._lock:
                out[stack] = result

        with ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="stack") as pool:
            futures = [pool.submit(task, s) for s in stacks]
            for future in as_completed(futures):
                future.result()
                if stop:
                    pool.shutdown(wait=True, cancel_futures=True)
                    break
        reason = stop[0] if stop else None
        for stack in stacks:
            if stack not in out:
                out[stack] = TenantResult(
                    stack, options.operation.value, Result.NOT_RUN, wave, detail=f"not run: {reason}"
                )
        return [out[s] for s in stacks], reason

    def _run_one(self, stack: str, options: RolloutOptions, wave: int | None) -> TenantResult:
        op = options.operation
        advice: tuple[str, ...] = ()
        if self.preflight is not None:
            clearance = self.preflight(stack, op)
            advice = clearance.advice
            if advice:
                verdict = "blocked" if clearance.blocked else "warning"
                self._record(stack, "preflight", verdict, detail="; ".join(advice))
            if clearance.blocked:
                self._record(stack, op.value, "failed", detail=clearance.blocked)
                return TenantResult(
                    stack, op.value, Result.FAILED, wave, detail=_detail(clearance.blocked), advice=advice
                )
        result = self._attempt(stack, options, wave)
        return replace(result, advice=advice + result.advice) if advice else result

    def _attempt(self, stack: str, options: RolloutOptions, wave: int | None) -> TenantResult:
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
                if attempts > options.retries:
                    return self._failed(stack, op, wave, exc, attempts, started)
                self.progress("retry", stack, _detail(exc, 120))
                self.sleep(options.retry_delay_s * 2 ** (attempts - 1))
            except SetupError:
                raise
            except EdgeError as exc:
                return self._failed(stack, op, wave, exc, attempts, started)
            except Exception as exc:  # a bug must not take the other tenants down with it
                return self._failed(
                    stack,
                    op,
                    wave,
                    EdgeError(f"stack {stack}: unexpected {type(exc).__name__}: {exc}"),
                    attempts,
                    started,
                )
        return self._succeeded(outcome, options, wave, attempts, started)

    def _failed(
        self, stack: str, op: Operation, wave: int | None, exc: Exception, attempts: int, started: float
    ) -> TenantResult:
        self._record(stack, op.value, "failed", detail=str(exc))
        self.progress("done", stack, "failed")
        return TenantResult(
            stack,
            op.value,
            Result.FAILED,
            wave,
            detail=_detail(exc),
            attempts=attempts,
            duration_s=time.monotonic() - started,
        )

    def _succeeded(
        self, outcome: StackOutcome, options: RolloutOptions, wave: int | None, attempts: int, started: float
    ) -> TenantResult:
        stack, op = outcome.stack, options.operation
        bundle_hash = outcome.outputs.get(output_keys.BUNDLE_HASH)
        bundle_hash = bundle_hash if isinstance(bundle_hash, str) else None
        result, detail = Result.OK, ""
        if op is Operation.UP:
            outputs = {**outcome.outputs, output_keys.BUNDLE_HASH: bundle_hash}
            try:
                # The old record no longer describes the stack; the new one waits for the gate.
                self.store.invalidate(stack)
                record = _record_for(stack, outputs, None, self.desired(stack))
            except (EdgeError, OSError) as exc:
                detail = f"deployed, but its record cannot be written ({_detail(exc, 160)})"
            else:
                with self._lock:
                    self._pending[stack] = record
            with self._lock:
                self._outputs[stack] = outputs
        elif op is Operation.DESTROY:
            self.store.forget(stack)
            if outcome.kept:
                detail = "kept protected " + ", ".join(f"{k.kind} {k.name}" for k in outcome.kept)
        if outcome.drift is not None:
            self.store.put_drift(stack, outcome.drift)
            result = Result.DRIFTED if outcome.drift.drifted else Result.NO_DRIFT
            detail = outcome.drift.describe()
        self._record(stack, op.value, result.value, bundle_hash=bundle_hash, detail=detail or None)
        self.progress("done", stack, result.value)
        return TenantResult(
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

    def _record(
        self, stack: str, operation: str, result: str, *, bundle_hash: str | None = None, detail: str | None = None
    ) -> None:
        if self.audit is not None:
            tenant = None if stack == "fleet" else tenant_of(stack)
            self.audit.record(
                stack=stack, tenant=tenant, operation=operation, result=result, bundle_hash=bundle_hash, detail=detail
            )


def _detail(exc: BaseException | str, limit: int | None = None) -> str:
    """Exception text as it may appear in a report: redacted, one bounded line."""
    text = redact(str(exc))
    return one_line(text) if limit is None else one_line(text, limit)


def _record_for(stack: str, outputs: Mapping[str, Any], config_digest: str | None, desired: Desired) -> DeployedRecord:
    """The record of a deployment from its outputs; `config_digest` None: the current stack file's."""
    bundle_hash = outputs.get(output_keys.BUNDLE_HASH)
    version = outputs.get(output_keys.CONFIG_VERSION)
    url = outputs.get(output_keys.HEALTH_URL)
    return DeployedRecord(
        stack=stack,
        bundle_hash=bundle_hash if isinstance(bundle_hash, str) else None,
        config_version=version if isinstance(version, int) else None,
        health_url=url if isinstance(url, str) else None,
        config_digest=config_digest or desired.config_digest,
        program_digest=desired.program_digest,
        render_digest=desired.render_digest,
        state_fingerprint=None,
        updated_at=datetime.now(UTC),
    )


# ---------------------------------------------------------------------------------------------
# Simulation: the same executor drives the tests, the benchmark and rollout rehearsals. It models
# latency, API traffic and failures; it never stands for a real deployment having happened.


@dataclass
class SimulatedExecutor:
    """A `StackExecutor` with a latency model and failure injection."""

    latency_s: Callable[[str, Operation], float] = lambda stack, op: 0.0
    """Engine time of one operation, outside API calls."""
    api_calls: int = 0
    """Cloudflare API requests per operation (each goes through `call_api`)."""
    api_parallel: int = 4
    """Requests in flight per stack (the engine's resource parallelism)."""
    call_api: Callable[[str, int], None] | None = None
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    """Per stack: exceptions raised by successive attempts, before attempts succeed."""
    rollback_failures: set[str] = field(default_factory=set)
    rollback_bundles: dict[str, str] = field(default_factory=dict)
    """bundle_hash output of a rollback per stack (default: as for an up)."""
    kept: dict[str, tuple[KeptResource, ...]] = field(default_factory=dict)
    """Protected resources a destroy leaves per stack."""
    bundles: dict[str, str] = field(default_factory=dict)
    """bundle_hash output per stack (default `sim-<stack>`)."""
    config_versions: dict[str, int] = field(default_factory=dict)
    """config_version output per stack (default 1)."""
    health_base: str | None = None
    """When set, `health_url` is `<health_base>/<tenant>/_edge/health`."""
    drift: dict[str, DriftReport] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    calls: list[tuple[str, str]] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, request: OpRequest) -> StackOutcome:
        with self._lock:
            self.calls.append((request.stack, request.operation.value))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            queued = self.failures.get(request.stack)
            failure = queued.pop(0) if queued else None
        try:
            self._work(request.stack, request.operation)
            if failure is not None:
                raise failure
            return self._outcome(request)
        finally:
            with self._lock:
                self._in_flight -= 1

    def rollback(self, stack: str) -> StackOutcome:
        with self._lock:
            self.calls.append((stack, "rollback"))
        self._work(stack, Operation.UP)
        if stack in self.rollback_failures:
            raise EdgeError(f"stack {stack}: simulated rollback failure")
        return StackOutcome(stack, Operation.UP, {"update": 1}, self._outputs(stack, self.rollback_bundles.get(stack)))

    def _outputs(self, stack: str, bundle_hash: str | None = None) -> dict[str, Any]:
        outs: dict[str, Any] = {
            output_keys.BUNDLE_HASH: bundle_hash or self.bundles.get(stack, f"sim-{stack}"),
            output_keys.CONFIG_VERSION: self.config_versions.get(stack, 1),
        }
        if self.health_base:
            outs[output_keys.HEALTH_URL] = f"{self.health_base}/{tenant_of(stack)}/_edge/health"
        return outs

    def outputs(self, stack: str) -> dict[str, Any]:
        return self._outputs(stack)

    def _work(self, stack: str, op: Operation) -> None:
        latency = self.latency_s(stack, op)
        if latency > 0:
            self.sleep(latency)
        if self.call_api is not None and self.api_calls:
            call = self.call_api
            with ThreadPoolExecutor(max_workers=self.api_parallel) as pool:
                list(pool.map(lambda i: call(stack, i), range(self.api_calls)))

    def _outcome(self, request: OpRequest) -> StackOutcome:
        stack, op = request.stack, request.operation
        if op is Operation.UP:
            return StackOutcome(stack, op, {"update": 1}, self._outputs(stack))
        if op is Operation.DESTROY:
            kept = self.kept.get(stack, ())
            advice = tuple(f"remove {k.urn} deliberately" for k in kept)
            return StackOutcome(stack, op, {"delete": 5}, {}, kept=kept, advice=advice)
        drift = self.drift.get(stack, DriftReport()) if request.drift_check else None
        return StackOutcome(stack, op, {"same": 5}, {}, drift)
