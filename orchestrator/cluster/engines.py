"""A fleet run on the engine a door was asked for: the one switch between `embedded` and `temporal`.

The CLI's `preview|up|refresh|destroy|drift --engine` and the control room's jobs (`engine`) both
come here, so either door reaches either engine alike, with the Temporal address, namespace and
task queue from the same settings (`CLAWDBOT_TEMPORAL_*`). The Temporal SDK is imported only when
a run or a check asks for the cluster: an embedded run never loads it.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import project_name
from orchestrator.fleet.audit import AuditLog
from orchestrator.fleet.health import GATE_TIMEOUT_S
from orchestrator.fleet.report import FleetReport, RolloutOptions
from orchestrator.fleet.runner import Progress
from orchestrator.ops.fleet_run import Engine, RunSeams, run_fleet


def check_engine(engine: Engine, settings: Settings) -> None:
    """Before a run is accepted: the cluster's frontend answers (EdgeError naming the setting if not).

    The embedded engine needs nothing checked here: its run checks its own setup when it starts."""
    if engine == "temporal":
        from orchestrator.cluster.client import reachable

        reachable(settings)


def run_on_engine(
    engine: Engine,
    settings: Settings,
    stacks: list[str],
    options: RolloutOptions,
    seams: RunSeams,
    *,
    audit: AuditLog,
    holder: str,
    progress: Progress,
    cancelled: Callable[[], bool] = lambda: False,
    gate_timeout_s: float = GATE_TIMEOUT_S,
) -> FleetReport:
    """One fleet run; the same progress events and report whichever engine runs it.

    `embedded`: `ops.fleet_run.run_fleet` here (preflight, lease, this process's API budget; `seams`
    give the executor and the gate). `temporal`: one rollout workflow on the region's task queue
    (`cluster.client`), whose stack operations run on the nodes' workers with their own executor,
    budget share and audit log (`holder` is who they record); `cancelled` becomes its cancel signal."""
    if engine == "temporal":
        from orchestrator.cluster.client import run_rollout

        return run_rollout(
            settings,
            project_name(settings.project_dir),
            stacks,
            options,
            who=holder,
            progress=progress,
            gate_timeout_s=gate_timeout_s,
            lease_s=settings.temporal_lease_s,
            cancelled=cancelled,
        )
    return run_fleet(
        settings, stacks, options, seams, audit=audit, holder=holder, progress=progress, cancelled=cancelled
    )
