"""`demo`: the example tenants on a local edge, end to end, in a scratch directory."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.core.model import Isolation
from orchestrator.ops.demo import DemoOptions, run_demo


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Scratch directory (default: a new temporary one, removed afterwards).",
)
@click.option("--keep", is_flag=True, help="Keep the scratch directory (project copy, passphrase, local state).")
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Loopback port of the local edge (0: any free port).",
)
@click.option(
    "--config-ttl",
    type=click.IntRange(0, 3600),
    default=None,
    help="Shorten the Worker's config cache TTL to this many seconds instead of waiting out the "
    "real one after the config push.",
)
@click.option(
    "--isolation",
    type=click.Choice(["workers", "dispatch"]),
    default="workers",
    show_default=True,
    help="workers: each tenant an account Worker. dispatch: Workers for Platforms, each tenant a user "
    "Worker behind the real dispatch and outbound Workers (a local namespace binding, no Cloudflare).",
)
def demo(workdir: Path | None, keep: bool, port: int, config_ttl: int | None, isolation: str) -> None:
    """Walk through the local edge with the example tenants (about a minute).

    Brings up acme and globex in workerd with fresh random secrets, prints the fleet health
    table, sends a signed and a forged webhook, reads the stored event back from D1, pushes a
    config change and waits until it is served, then tears everything down. Needs a clone of the
    repository (its example tenants), node and `npm ci` in worker_src (scripts/demo.sh does both).
    Your project, secrets and any running local edge are not touched.
    """
    mode: Isolation = "dispatch" if isolation == "dispatch" else "workers"
    run_demo(DemoOptions(workdir=workdir, keep=keep, port=port, config_ttl_seconds=config_ttl, isolation=mode))
