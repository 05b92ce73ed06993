"""`health`: one probe of every tenant's `/_edge/health`, on the local edge or on Cloudflare.

Both targets are judged alike: the right tenant, the bundle we deployed, at least the config
version we deployed, and the Worker's own ok/degraded. Exit 1 when any tenant is not ok.
"""

from __future__ import annotations

import json

import click

from orchestrator.cli.tables import print_table
from orchestrator.config.settings import Settings
from orchestrator.local_edge import LocalEdge
from orchestrator.local_edge.errors import LocalEdgeError
from orchestrator.ops.health import check_json, health_table, local_checks, remote_checks


@click.command()
@click.option("--tenant", "tenants", multiple=True, help="Probe only this tenant (repeatable). Default: all.")
@click.option("--local", "local", is_flag=True, help="Probe the local edge (default when it is running).")
@click.option("--remote", "remote", is_flag=True, help="Probe the Cloudflare deployment over HTTPS.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def health(tenants: tuple[str, ...], local: bool, remote: bool, as_json: bool) -> None:
    """Probe each tenant's health endpoint and show a fleet table; exit 1 if any is not ok.

    Without --local/--remote: the local edge if it is running, else Cloudflare.
    """
    if local and remote:  # one flag_value pair would silently keep the last one given
        raise click.UsageError("--local and --remote exclude each other: probe one target at a time")
    mode: str | None = "local" if local else "remote" if remote else None
    settings = Settings.from_env()
    edge = LocalEdge(settings.local_edge_dir)
    if mode is None:
        mode = "local" if edge.status().state == "running" else "remote"
    if mode == "local":
        try:
            checks = local_checks(edge, settings.project_dir, tenants)
        except LocalEdgeError as exc:
            raise click.ClickException(f"{exc} (start it with `local up`, or pass --remote)") from None
    else:
        checks = remote_checks(settings, tenants)
    if as_json:
        click.echo(json.dumps({"target": mode, "tenants": [check_json(c) for c in checks]}, indent=2))
    else:
        where = "local edge" if mode == "local" else "Cloudflare"
        print_table(health_table(checks, f"Fleet health ({where})"))
    if not all(c.ok for c in checks):
        raise SystemExit(1)
