"""`temporal schedules apply|list|trigger`: drift, health and backup as Temporal schedules (cluster mode).

On one VPS the systemd timers run these jobs. With several nodes, they run once for the cluster as
Temporal schedules instead (docs/cluster.md, "Schedules"), so that no job runs once per node.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from orchestrator.cli.errors import EdgeGroup
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import project_name
from orchestrator.core.errors import EdgeError
from orchestrator.core.masking import report_line
from orchestrator.engine.budget import ThrottleConfig

if TYPE_CHECKING:
    from orchestrator.cluster.schedules import Planned

T = TypeVar("T")
KIND_CHOICE = click.Choice(["drift", "health", "backup"])
FAILED_STATES = frozenset({"FAILED", "TIMED_OUT", "TERMINATED", "CANCELED"})


def _run(step: Callable[..., Awaitable[T]], *args: object) -> T:
    """Connect with the settings' address and namespace and run one async step (the SDK only here)."""
    from temporalio.service import RPCError

    from orchestrator.cluster.client import connect

    async def go() -> T:
        client = await connect(Settings.from_env())
        return await step(client, *args)

    try:
        return asyncio.run(go())
    except RPCError as exc:
        raise EdgeError(f"the Temporal server refused: {report_line(exc, 300)}") from None


def _plans(concurrency: int | None = None) -> list[Planned]:
    from orchestrator.cluster.schedules import planned
    from orchestrator.ops.fleet_run import run_share, sizing_for_budget

    settings = Settings.from_env()
    if concurrency is None:  # as `drift --engine temporal` sizes it: from the task queue's budget share
        concurrency = sizing_for_budget(ThrottleConfig.requests, share=run_share(settings, cluster=True)).concurrency
    return planned(settings, project_name(settings.project_dir), concurrency)


@click.group(cls=EdgeGroup)
def schedules() -> None:
    """Drift, health and backup as Temporal schedules: once for the cluster, not once per node.

    They replace the systemd timers on a cluster node (`setup-vps.sh --worker` leaves the timers
    off). Their times are the timers' times, and they run on this node's task queue
    (CLAWDBOT_TEMPORAL_TASK_QUEUE and _REGION) of CLAWDBOT_TEMPORAL_ADDRESS / _NAMESPACE.
    """


@schedules.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 32),
    default=None,
    help="Stack operations at once in a scheduled drift (as `drift --concurrency`). Default: sized as "
    "`drift --engine temporal` is, from the task queue's share of the API budget (6 for all of it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def apply(concurrency: int | None, as_json: bool) -> None:
    """Create the three schedules, or update them to this version's definition; safe to re-run.

    Each schedule is `created`, `updated` or `unchanged`. An update keeps a pause and its note.
    """
    from orchestrator.cluster.schedules import apply as apply_all

    done = _run(apply_all, _plans(concurrency))
    if as_json:
        click.echo(json.dumps({"schedules": [a.as_dict() for a in done]}, indent=2))
        return
    for item in done:
        click.echo(f"{item.kind}: {item.action} ({item.schedule_id}; {item.when})")


@schedules.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def list_(as_json: bool) -> None:
    """Each schedule, when it runs next, and how its last run ended.

    Exits 1 when a schedule is missing (run `temporal schedules apply`) or its last run failed, so
    a monitor can run it as it would run `systemctl --failed`.
    """
    from orchestrator.cluster.schedules import describe

    listed = _run(describe, _plans())
    if as_json:
        click.echo(json.dumps({"schedules": [item.as_dict() for item in listed]}, indent=2))
    else:
        for item in listed:
            if not item.found:
                click.echo(f"{item.kind}: not applied ({item.schedule_id}); run `temporal schedules apply`")
                continue
            last = item.last_run or {}
            state = "paused" + (f" ({item.note})" if item.note else "") if item.paused else f"next {item.next_run}"
            ran = f"last run {last.get('status')} at {last.get('started_at')}" if last else "no run yet"
            click.echo(f"{item.kind}: {item.when}; {state}; {ran}")
    broken = [i for i in listed if not i.found or (i.last_run or {}).get("status") in FAILED_STATES]
    if broken:
        raise click.exceptions.Exit(1)


@schedules.command()
@click.argument("kind", type=KIND_CHOICE)
def trigger(kind: str) -> None:
    """Start one drift, health or backup run now (skipped if one is still running)."""
    from orchestrator.cluster.schedules import trigger as trigger_one

    plan = next(p for p in _plans() if p.kind == kind)
    _run(trigger_one, plan)
    click.echo(f"{kind}: triggered; follow it with `temporal schedules list`")
