"""Starting a rollout on the cluster and following it: what `--engine temporal` does on the caller's side.

The caller needs no Pulumi, no state and no passphrase: it starts one rollout workflow on the
region's task queue, forwards the workflow's progress events (its `progress` query, polled) to the
same progress callback the embedded engine feeds, and returns the workflow's `FleetReport`. Ctrl-C
asks the rollout to stop (the `cancel` signal: nothing new starts, running operations finish) and
stops following; the rollout itself lives on in the cluster. A caller that keeps following (the
control room's job) passes `cancelled` instead: once it turns true the signal is sent, and the
report still comes, with the stacks that never started reported `not-run: cancelled`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from orchestrator.config.settings import Settings
from orchestrator.core.errors import EdgeError
from orchestrator.core.masking import report_line
from orchestrator.fleet.report import FleetReport, RolloutOptions

from .messages import LEASE_S, Caller, ProgressEvent, RolloutJob
from .names import CANCEL_SIGNAL, PROGRESS_QUERY, ROLLOUT_WORKFLOW, rollout_workflow_id

Progress = Callable[[str, str | None, str], None]
POLL_S = 0.5
"""How often the caller asks a running rollout for new progress events."""


async def connect(settings: Settings) -> Client:
    """A client of the configured namespace, speaking the pydantic JSON converter every worker speaks."""
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            connect_timeout=timedelta(seconds=10),
        )
    except RuntimeError as exc:  # the SDK's bridge reports a failed connect as RuntimeError
        why = "connection refused" if "Connection refused" in str(exc) else report_line(exc, 200)
        raise EdgeError(
            f"cannot reach the Temporal server at {settings.temporal_address} ({why}); start one with "
            "`python -m orchestrator temporal dev`, or set CLAWDBOT_TEMPORAL_ADDRESS to your cluster's frontend"
        ) from None


def reachable(settings: Settings) -> None:
    """The configured frontend answers (a connect, nothing started); EdgeError naming the setting if not."""
    asyncio.run(connect(settings))


async def start_rollout(
    client: Client,
    settings: Settings,
    project: str,
    stacks: Sequence[str],
    options: RolloutOptions,
    *,
    who: str,
    gate_timeout_s: float,
    lease_s: float = LEASE_S,
) -> WorkflowHandle[object, FleetReport]:
    workflow_id = rollout_workflow_id(project, options.operation.value)
    job = RolloutJob(
        Caller(who, workflow_id), project, tuple(stacks), options, settings.temporal_queue, gate_timeout_s, lease_s
    )
    return await client.start_workflow(
        ROLLOUT_WORKFLOW, job, id=workflow_id, task_queue=settings.temporal_queue, result_type=FleetReport
    )


async def follow(
    handle: WorkflowHandle[object, FleetReport], progress: Progress, cancelled: Callable[[], bool] = lambda: False
) -> FleetReport:
    """Forward the rollout's progress events until it ends; its report. Once `cancelled()`, the
    rollout is asked to stop (once) and still followed to its end."""
    result = asyncio.ensure_future(handle.result())
    seen = 0
    asked = False

    async def catch_up() -> None:
        nonlocal seen
        events = await handle.query(PROGRESS_QUERY, seen, result_type=list[ProgressEvent])
        for event in events:
            progress(event.event, event.stack, event.detail)
        seen += len(events)

    try:
        while True:
            done, _ = await asyncio.wait({result}, timeout=POLL_S)
            if not done and not asked and cancelled():
                asked = True
                await handle.signal(CANCEL_SIGNAL)
            try:
                await catch_up()
            except RPCError:
                if not done:  # a query can fail while the workflow moves between workers: ask again
                    continue
            if done:
                break
        return result.result()
    except WorkflowFailureError as exc:
        raise EdgeError(f"rollout {handle.id} failed in the cluster: {report_line(exc.cause or exc)}") from None
    except (asyncio.CancelledError, KeyboardInterrupt):
        result.cancel()
        await handle.signal(CANCEL_SIGNAL)
        raise


async def run_rollout_async(
    settings: Settings,
    project: str,
    stacks: Sequence[str],
    options: RolloutOptions,
    *,
    who: str,
    progress: Progress,
    gate_timeout_s: float,
    lease_s: float = LEASE_S,
    cancelled: Callable[[], bool] = lambda: False,
) -> FleetReport:
    client = await connect(settings)
    handle = await start_rollout(
        client, settings, project, stacks, options, who=who, gate_timeout_s=gate_timeout_s, lease_s=lease_s
    )
    progress("cluster", None, f"rollout {handle.id} on task queue {settings.temporal_queue}")
    return await follow(handle, progress, cancelled)


def run_rollout(
    settings: Settings,
    project: str,
    stacks: Sequence[str],
    options: RolloutOptions,
    *,
    who: str,
    progress: Progress,
    gate_timeout_s: float,
    lease_s: float = LEASE_S,
    cancelled: Callable[[], bool] = lambda: False,
) -> FleetReport:
    """Run one rollout on the cluster and wait for its report (`--engine temporal`, the control room's jobs)."""
    return asyncio.run(
        run_rollout_async(
            settings,
            project,
            stacks,
            options,
            who=who,
            progress=progress,
            gate_timeout_s=gate_timeout_s,
            lease_s=lease_s,
            cancelled=cancelled,
        )
    )
