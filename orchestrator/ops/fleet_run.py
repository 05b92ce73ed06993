"""One fleet run as every door makes it: `preview|up|refresh|destroy|drift` and the control room's jobs.

A preflight that clears provably dead locks and blocks stacks an operation would break, the fleet
lease (one run at a time across processes), one throttled Cloudflare API budget for every stack,
then `Fleet` itself, wired to the engine's executor and the deployed records on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from orchestrator.config.secrets_provider import check_passphrase_env
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import TENANT_KEY, load_tenant_spec, project_name, read_stack_config
from orchestrator.core import outputs as output_keys
from orchestrator.core.cloudflare_api import api_base_url
from orchestrator.core.config_match import payload_text_identity
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.crypto import config_payload_text
from orchestrator.core.errors import ConfigError
from orchestrator.core.names import tenant_flag, tenant_of
from orchestrator.engine.budget import ThrottleConfig
from orchestrator.engine.locks import RecoveryReport, StackLock, checkpoint_outputs, clear_stale, fleet_lease, inspect
from orchestrator.engine.records import FileDeployedStore
from orchestrator.engine.state_store import state_of
from orchestrator.engine.throttle import ThrottleProxy
from orchestrator.fleet.audit import AuditLog
from orchestrator.fleet.changes import FleetInputs, Rendered
from orchestrator.fleet.ports import (
    Clearance,
    ConfigVersions,
    HealthGate,
    Operation,
    OpRequest,
    Preflight,
    StackExecutor,
    StackOutcome,
    VersionFacts,
)
from orchestrator.fleet.preflight import clearance
from orchestrator.fleet.report import FleetReport, RolloutOptions
from orchestrator.fleet.rollout import Fleet
from orchestrator.fleet.runner import Progress
from orchestrator.fleet.sizing import Sizing, rollout_sizing
from orchestrator.ops.offboard import sweep_destroyed

Engine = Literal["embedded", "temporal"]
"""Who runs a fleet run's stacks: `embedded`, threads in this process (one VPS, the default);
`temporal`, the workers of a Temporal cluster (`orchestrator.cluster`), reached with the
CLAWDBOT_TEMPORAL_* settings. The CLI's `--engine` and the control room's job `engine` are this."""
ENGINES: tuple[Engine, ...] = get_args(Engine)

ExecutorFactory = Callable[[Settings, "str | None"], StackExecutor]
"""Builds the executor once the throttle is up (its base URL, or None without a throttle)."""


def recover_stack(settings: Settings, audit: AuditLog, stack: str) -> tuple[RecoveryReport, list[StackLock]]:
    """Inspect a stack for debris of a killed run and clear its provably dead locks (each audited)."""
    state = state_of(settings)
    report = inspect(state, project_name(settings.project_dir), stack, tenant_flag=tenant_flag(stack))
    cleared = clear_stale(state, report)
    for lock in cleared:
        audit.record(
            stack=stack,
            tenant=tenant_of(stack),
            operation="recover",
            result="cleared",
            detail=f"removed stale lock {lock.key.rsplit('/', 1)[-1]} of a dead process",
        )
    return report, cleared


def preflight_for(settings: Settings, audit: AuditLog) -> Preflight:
    """The fleet's `Preflight` port: recover the stack, then apply the fleet's rule (fleet/preflight.py)."""

    def preflight(stack: str, operation: Operation) -> Clearance:
        report, _ = recover_stack(settings, audit, stack)
        return clearance(report, operation)

    return preflight


def sizing_for_budget(
    requests: int, concurrency: int | None = None, wave_size: int | None = None, *, share: float
) -> Sizing:
    """A rollout's concurrency and wave size: the ones given, else computed (orchestrator/fleet/sizing.py)
    from the steady rate of the throttle that spends the run's part of the user's API budget of
    `requests` per 5 minutes: `share` of it (`node_share`, the same floor the proxy caps itself at;
    `run_share` says whose share). A node at half the budget thus runs half the stacks, and the
    nodes' rollouts together are sized for no more than the whole budget."""
    computed = node_sizing(ThrottleConfig.for_node(requests, share))
    return Sizing(concurrency or computed.concurrency, wave_size or computed.wave_size)


def node_sizing(config: ThrottleConfig) -> Sizing:
    """The sizing that keeps the proxy of `config` busy: what a run behind that proxy computes."""
    return rollout_sizing(config.rate)


def run_share(settings: Settings, *, cluster: bool = False) -> float:
    """The share of the user's API budget that runs a rollout's stacks: this node's own proxy
    (`api_budget_share`) for the embedded engine; with the cluster engine, the workers of the task
    queue together (`temporal_queue_budget_share`), since the rollout's operations go to all of them."""
    return settings.temporal_queue_budget_share if cluster else settings.api_budget_share


def worker_concurrency(settings: Settings, budget: int = ThrottleConfig.requests) -> int:
    """Stack operations this node's Temporal worker runs at once: CLAWDBOT_TEMPORAL_WORKER_CONCURRENCY,
    else what an embedded run on this node is sized to (its share of the user's `budget`)."""
    configured = settings.temporal_worker_concurrency
    return configured or sizing_for_budget(budget, share=settings.api_budget_share).concurrency


DEFAULT_SIZING = sizing_for_budget(ThrottleConfig.requests, share=1.0)
"""What --concurrency and --wave-size come to on one VPS when neither they nor --api-budget are given."""


def automation_executor(settings: Settings, base_url: str | None) -> StackExecutor:
    """The real executor; the Automation API is imported only when a run has stacks to operate."""
    from orchestrator.engine.stacks import AutomationExecutor

    return AutomationExecutor(settings, base_url=base_url)


@contextmanager
def api_budget(
    budget: int, enabled: bool = True, budget_key: str = ThrottleConfig.budget_key, share: float = 1.0
) -> Iterator[str | None]:
    """The throttling proxy every provider of the run goes through (its base URL), or None.

    `budget` is the Cloudflare user's whole budget per window; this node spends `share` of it
    (`node_share`), so several nodes of one user never exceed it together (docs/cluster.md)."""
    if not enabled:
        yield None
        return
    upstream = api_base_url(os.environ)
    config = ThrottleConfig.for_node(budget, share, budget_key=budget_key)
    with ThrottleProxy(upstream, config) as proxy:
        yield proxy.base_url


def deployed_config_versions(settings: Settings, project: str, store: FileDeployedStore) -> ConfigVersions:
    """The version port of `up`: the stack file's config_version (and the payload it would sign)
    against what is deployed, from the state's outputs (a deploy that failed its gate counts too)
    and the fleet's records."""
    state = state_of(settings)

    def versions(stack: str) -> VersionFacts:
        try:
            tenant = read_stack_config(settings.project_dir, stack).get(TENANT_KEY)
        except ConfigError:
            tenant = None  # the run reports the file's fault itself, in full
        wanted = tenant.get("config_version", 1) if isinstance(tenant, dict) else None
        deployed = [checkpoint_outputs(state, project, stack)]
        deployed += [
            {output_keys.CONFIG_VERSION: r.config_version, output_keys.CONFIG_IDENTITY: r.config_identity}
            for r in (store.get(stack), store.last_good(stack))
            if r
        ]
        seen = [(_integer(d.get(output_keys.CONFIG_VERSION)), d.get(output_keys.CONFIG_IDENTITY)) for d in deployed]
        return VersionFacts(
            wanted=_integer(wanted),
            deployed=max((v for v, _ in seen if v is not None), default=None),
            wanted_identity=_wanted_identity(settings.project_dir, stack),
            deployed_identities=tuple((v, i) for v, i in seen if v is not None and isinstance(i, str)),
        )

    return versions


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _wanted_identity(project_dir: Path, stack: str) -> str | None:
    """The identity of the payload the stack file would sign; None for a file the program refuses."""
    try:
        spec = load_tenant_spec(project_dir, stack)
        return payload_text_identity(config_payload_text(spec.id, spec.config_version, spec.config))
    except ConfigError:
        return None


class BuiltOnFirstUse:
    """A `StackExecutor` built when the run first needs one, not when the run starts.

    Building the real executor checks the Pulumi CLI (`pulumi version`), the passphrase file and the
    private directories, and imports the Automation API; a run that finds nothing to do (an `up` over
    unchanged tenants) needs none of that, so it never pays for it. A setup error surfaces at the
    first use, before any stack starts (`Fleet` calls `prepare` first).
    """

    def __init__(self, build: Callable[[], StackExecutor]) -> None:
        self._build = build
        self._built: StackExecutor | None = None

    def _executor(self) -> StackExecutor:
        if self._built is None:
            self._built = self._build()
        return self._built

    def prepare(self) -> None:
        self._executor().prepare()

    def run(self, request: OpRequest) -> StackOutcome:
        return self._executor().run(request)

    def rollback(self, stack: str, config_version: int | None) -> StackOutcome:
        return self._executor().rollback(stack, config_version)

    def outputs(self, stack: str) -> dict[str, Any]:
        return self._executor().outputs(stack)


@dataclass(frozen=True)
class RunSeams:
    """How a run reaches the world; the doors pass the real ones, tests the simulated executor."""

    executor: ExecutorFactory
    gate: HealthGate
    render: Callable[[Path], Callable[[str], Rendered]]
    budget: int = ThrottleConfig.requests
    throttle: bool = True


def run_fleet(
    settings: Settings,
    stacks: list[str],
    options: RolloutOptions,
    seams: RunSeams,
    *,
    audit: AuditLog,
    holder: str,
    progress: Progress,
    cancelled: Callable[[], bool] = lambda: False,
) -> FleetReport:
    """Preflight, fleet lease, one API budget, then `Fleet.run` (FleetLockError: another run holds the lease)."""
    check_passphrase_env(settings.passphrase_file)
    command = f"{options.operation.value} {' '.join(tenant_of(s) for s in stacks)}"
    with (
        fleet_lease(settings.fleet_lease_file, holder=holder, command=command[:200]),
        api_budget(seams.budget, seams.throttle, settings.api_budget_key, settings.api_budget_share) as base_url,
    ):
        inputs = FleetInputs.compute(settings.project_dir, REPO_ROOT, cache_dir=settings.work_root)
        project = project_name(settings.project_dir)
        store = FileDeployedStore(settings, project)
        fleet = Fleet(
            BuiltOnFirstUse(lambda: seams.executor(settings, base_url)),
            store,
            desired=lambda s: inputs.desired(settings.project_dir, s),
            render=seams.render(settings.project_dir),
            gate=seams.gate,
            audit=audit,
            preflight=preflight_for(settings, audit),
            versions=deployed_config_versions(settings, project, store),
            progress=progress,
            cancelled=cancelled,
        )
        # Offboarding: a destroyed dispatch tenant's leftovers go by tag, in the same lease and budget.
        return sweep_destroyed(settings, fleet.run(stacks, options), base_url, audit)
