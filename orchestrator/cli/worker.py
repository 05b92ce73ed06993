"""`worker`: this node's Temporal worker for the cluster engine (`--engine temporal`)."""

from __future__ import annotations

import os
import socket

import click

from orchestrator.cli.errors import EdgeCommand
from orchestrator.config.secrets_provider import check_passphrase_env
from orchestrator.config.settings import Settings
from orchestrator.engine.budget import ThrottleConfig


@click.command(cls=EdgeCommand)
@click.option(
    "--api-budget",
    type=click.IntRange(1, 100_000),
    default=ThrottleConfig.requests,
    show_default=True,
    help="The Cloudflare user's API requests per 5 minutes, which every node of the user shares: this node "
    "spends CLAWDBOT_API_BUDGET_SHARE of it, and its task queue is rate-limited from it (docs/cluster.md).",
)
def worker(api_budget: int) -> None:
    """Run this node's Temporal worker: the fleet's workflows and stack operations, until SIGTERM.

    It polls its region's task queue (`<CLAWDBOT_TEMPORAL_TASK_QUEUE>-<CLAWDBOT_TEMPORAL_REGION>`) of
    CLAWDBOT_TEMPORAL_ADDRESS / _NAMESPACE and runs at most CLAWDBOT_TEMPORAL_WORKER_CONCURRENCY stack
    operations at once (default: as many as this node's share of the budget keeps busy), through the
    Automation API with this node's state, passphrase and records. On SIGTERM it takes no new work and
    lets running operations finish.
    """
    from orchestrator.cluster.worker import run_worker  # the Temporal SDK and the engine: only here
    from orchestrator.ops.fleet_run import worker_concurrency

    settings = Settings.from_env()
    check_passphrase_env(settings.passphrase_file)

    def ready(queue: str) -> None:
        click.echo(
            f"worker {socket.gethostname()}:{os.getpid()} polling task queue {queue} of "
            f"{settings.temporal_address} (namespace {settings.temporal_namespace}, "
            f"{worker_concurrency(settings, api_budget)} operations at once)",
            err=True,
        )

    run_worker(settings, budget=api_budget, on_ready=ready)
