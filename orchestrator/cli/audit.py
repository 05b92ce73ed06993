"""`audit`: show the append-only audit log (fleet runs, tenant registry and secret changes, by name only)."""

from __future__ import annotations

import json

import click

from orchestrator.cli.errors import EdgeCommand
from orchestrator.config.settings import Settings
from orchestrator.fleet.audit import read_events


@click.command(cls=EdgeCommand)
@click.option("--tenant", "tenants", multiple=True, help="Only events of this tenant (repeatable).")
@click.option("--operation", "operations", multiple=True, help="Only this operation, e.g. up, secret-import.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N events.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def audit(tenants: tuple[str, ...], operations: tuple[str, ...], limit: int | None, as_json: bool) -> None:
    """Show the audit log: fleet runs, tenant and secret changes (names only), filtered by --tenant; --json.

    Oldest first: when, who, tenant, operation, result, detail. The log ($CLAWDBOT_AUDIT_LOG) never
    holds a secret value: secret changes are recorded by name only.
    """
    settings = Settings.from_env()
    events = [
        e
        for e in read_events(settings.audit_log)
        if (not tenants or e.tenant in tenants) and (not operations or e.operation in operations)
    ]
    if limit is not None:
        events = events[-limit:]
    if as_json:
        click.echo(json.dumps({"log": str(settings.audit_log), "events": [e.model_dump(mode="json") for e in events]}))
        return
    if not events:
        click.echo(f"no matching events in {settings.audit_log}")
        return
    for e in events:
        when = e.when.strftime("%Y-%m-%d %H:%M:%S")
        line = f"{when}  {e.who}  {e.tenant or e.stack}  {e.operation}  {e.result}"
        click.echo(f"{line}  {e.detail}" if e.detail else line)
