"""A node's Temporal worker (`python -m orchestrator worker`): the fleet's workflows and activities.

One worker per node polls its region's task queue (`Settings.temporal_queue`) and runs at most
`temporal_worker_concurrency` stack operations at once. It wires the activities to the real engine:
the Automation-API executor behind this node's throttling proxy (its share of the Cloudflare budget),
the deployed records, the preflight and crash recovery of `recover`, the health gate. The provider
plugins are installed once when it starts, before it takes any work. Every node must run the same
commit: change detection compares the program digest of the node that plans with the records.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

from temporalio.client import Client
from temporalio.worker import Worker

from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import project_name
from orchestrator.core.contract import REPO_ROOT
from orchestrator.engine.budget import ThrottleConfig
from orchestrator.engine.records import FileDeployedStore
from orchestrator.engine.stacks import AutomationExecutor
from orchestrator.fleet import health
from orchestrator.fleet.audit import AuditLog
from orchestrator.fleet.changes import FleetInputs, bundle_renderer
from orchestrator.fleet.ports import HealthGate
from orchestrator.ops.fleet_run import api_budget, deployed_config_versions, preflight_for, recover_stack

from .activities import Debris, FleetActivities, WorkerWorld
from .client import connect
from .workflows import RolloutWorkflow, StackOperationWorkflow

GRACEFUL_SHUTDOWN = timedelta(minutes=10)
"""On SIGTERM, running stack operations get this long to finish before the worker stops."""


def build_worker(client: Client, settings: Settings, world: WorkerWorld, *, task_queue: str | None = None) -> Worker:
    """The worker of this node: both workflows, the activities bound to `world`."""
    activities = FleetActivities(world)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_queue,
        workflows=[RolloutWorkflow, StackOperationWorkflow],
        activities=activities.activities(),
        max_concurrent_activities=settings.temporal_worker_concurrency,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


def _gate(timeout_s: float) -> HealthGate:
    return partial(health.gate, timeout_s=timeout_s, interval_s=health.GATE_INTERVAL_S)


@contextmanager
def engine_world(
    settings: Settings, *, budget: int = ThrottleConfig.requests, throttle: bool = True
) -> Iterator[WorkerWorld]:
    """The real engine on this node, behind its own throttling proxy, for the worker's lifetime."""
    project = project_name(settings.project_dir)
    with api_budget(budget, throttle, settings.api_budget_key) as base_url:
        inputs = FleetInputs.compute(settings.project_dir, REPO_ROOT)
        store = FileDeployedStore(settings, project)

        def recover(stack: str, audit: AuditLog) -> Debris:
            report, _ = recover_stack(settings, audit, stack)
            return report

        yield WorkerWorld(
            settings=settings,
            executor=AutomationExecutor(settings, base_url=base_url),
            store=store,
            desired=lambda stack: inputs.desired(settings.project_dir, stack),
            render=bundle_renderer(settings.project_dir),
            gate=_gate,
            preflight=lambda audit: preflight_for(settings, audit),
            versions=deployed_config_versions(settings, project, store),
            recover=recover,
        )


async def serve(
    settings: Settings, world: WorkerWorld, *, on_ready: Callable[[str], None] = lambda queue: None
) -> None:
    """Run the worker until SIGTERM or SIGINT, then let running operations finish (graceful shutdown)."""
    client = await connect(settings)
    worker = build_worker(client, settings, world)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with worker:
        on_ready(settings.temporal_queue)
        await stopping.wait()
    world.threads.shutdown(wait=True)


def run_worker(settings: Settings, *, budget: int, on_ready: Callable[[str], None]) -> None:
    with engine_world(settings, budget=budget) as world:
        world.executor.prepare()  # once per node, before any stack: racing plugin installs break
        asyncio.run(serve(settings, world, on_ready=on_ready))
