"""A node's Temporal worker (`python -m orchestrator worker`): the fleet's workflows and activities.

One worker per node polls its region's task queue (`Settings.temporal_queue`) and runs at most
`temporal_worker_concurrency` stack operations at once (unset: sized from the node's budget share).
It wires the activities to the real engine: the Automation-API executor behind this node's throttling
proxy (its share of the Cloudflare budget), the deployed records, the preflight and crash recovery of
`recover`, the health gate. The provider plugins are installed once when it starts, before it takes
any work. Every node must run the same commit: change detection compares the program digest of the
node that plans with the records.
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
from orchestrator.fleet.preflight import Debris
from orchestrator.fleet.sizing import REQUESTS_PER_UP
from orchestrator.ops.fleet_run import (
    api_budget,
    deployed_config_versions,
    preflight_for,
    recover_stack,
    worker_concurrency,
)

from .activities import FleetActivities, WorkerWorld
from .client import connect
from .maintenance import MaintenanceActivities, MaintenanceWorkflow
from .workflows import RolloutWorkflow, StackOperationWorkflow

ACTIVITIES_PER_OPERATION = 4
"""The server-side limit counts every activity of the queue, not only stack operations: a rollout's
plan, gate, commit and audit activities share it. Four per operation leaves them room."""
GRACEFUL_SHUTDOWN = timedelta(minutes=10)
"""On SIGTERM, running stack operations get this long to finish before the worker stops."""


def queue_rate(settings: Settings, budget: int) -> float:
    """The coarse gate of one Cloudflare API budget: `max_task_queue_activities_per_second` of this node's
    task queue, enforced by the Temporal server across every worker that polls the queue.

    temporalio 1.35 (`worker/_worker.py`): "Sets the maximum number of activities per second the task
    queue will dispatch, controlled server-side ... If multiple workers on the same queue have different
    values set, they will thrash with the last poller winning." So the value is derived from what every
    node of the queue has alike, the user's `budget` and the queue's share of it, never from the node's
    own share: the stack operations the queue's part of the budget pays for (its steady request rate,
    `engine/budget.py`, over the fleet's requests per `up`, `fleet/sizing.py`), times the activities
    per operation. The
    request-level proxies on each node stay the exact gate; this one keeps a queue of operations from
    piling up behind them.
    """
    requests_per_s = ThrottleConfig.for_node(budget, settings.temporal_queue_budget_share).rate
    return requests_per_s / REQUESTS_PER_UP * ACTIVITIES_PER_OPERATION


def build_worker(
    client: Client,
    settings: Settings,
    world: WorkerWorld,
    *,
    task_queue: str | None = None,
    queue_rate: float | None = None,
) -> Worker:
    """The worker of this node: the workflows, the activities bound to `world`, and (for a real node)
    the queue's server-side rate limit."""
    activities = FleetActivities(world)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_queue,
        workflows=[RolloutWorkflow, StackOperationWorkflow, MaintenanceWorkflow],
        activities=[*activities.activities(), *MaintenanceActivities(world.settings).activities()],
        max_concurrent_activities=worker_concurrency(world.settings),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        max_task_queue_activities_per_second=queue_rate,
    )


def _gate(timeout_s: float) -> HealthGate:
    return partial(health.gate, timeout_s=timeout_s, interval_s=health.GATE_INTERVAL_S)


@contextmanager
def engine_world(
    settings: Settings, *, budget: int = ThrottleConfig.requests, throttle: bool = True
) -> Iterator[WorkerWorld]:
    """The real engine on this node, behind its own throttling proxy, for the worker's lifetime; its
    settings carry the worker's concurrency, sized from the node's share of `budget` unless set."""
    settings = settings.model_copy(update={"temporal_worker_concurrency": worker_concurrency(settings, budget)})
    project = project_name(settings.project_dir)
    with api_budget(budget, throttle, settings.api_budget_key, settings.api_budget_share) as base_url:
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
    settings: Settings,
    world: WorkerWorld,
    *,
    on_ready: Callable[[str], None] = lambda queue: None,
    queue_rate: float | None = None,
) -> None:
    """Run the worker until SIGTERM or SIGINT, then let running operations finish (graceful shutdown)."""
    client = await connect(settings)
    worker = build_worker(client, settings, world, queue_rate=queue_rate)
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
        asyncio.run(serve(settings, world, on_ready=on_ready, queue_rate=queue_rate(settings, budget)))
