"""`tenants list|show|add|remove|sweep`: the tenant registry is the set of Pulumi.prod.<tenant>.yaml files."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from orchestrator.cli.fleet import fleet_deps, select_stacks
from orchestrator.cli.tables import print_table
from orchestrator.cli.tenant_fields import tenant_field_options, tenant_raw
from orchestrator.config.stack_file import load_stack_file
from orchestrator.config.tenant_config import (
    SECRETS_COMMAND,
    SECRETS_KEY,
    load_tenant_spec,
    project_name,
    tenant_stacks,
)
from orchestrator.core.masking import SECRET_MASK
from orchestrator.core.names import stack_file, tenant_of
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet.audit import AuditLog, default_who
from orchestrator.ops.offboard import NOT_SWEEPABLE, sweep_tag, sweepable_tenant
from orchestrator.ops.tenants import add_tenant, remove_tenant


@click.group()
def tenants() -> None:
    """List, inspect, register and unregister tenants; sweep a departed dispatch tenant's leftovers by tag
    (no Pulumi engine involved)."""


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def list_tenants(as_json: bool) -> None:
    """Every registered tenant, with what the fleet last deployed to it."""
    settings = fleet_deps().settings()
    store = FileDeployedStore(settings, project_name(settings.project_dir))
    rows = []
    for stack in tenant_stacks(settings.project_dir):
        record = store.get(stack)
        rows.append(
            {
                "tenant": tenant_of(stack),
                "stack": stack,
                "bundle_hash": record.bundle_hash if record else None,
                "last_update": record.updated_at.isoformat(timespec="seconds") if record else None,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} tenants")
    for column in ("tenant", "stack", "bundle", "last update"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["tenant"], row["stack"], (row["bundle_hash"] or "")[:12], row["last_update"] or "never")
    print_table(table)
    if not rows:  # run in the wrong directory, an empty table alone looked like an empty fleet
        hint = "--project-dir or CLAWDBOT_PROJECT_DIR names the project"
        click.echo(f"no Pulumi.prod.<tenant>.yaml in {settings.project_dir}: {hint}", err=True)


@tenants.command()
@click.argument("tenant")
def show(tenant: str) -> None:
    """A tenant's config (secret values masked) and its deployed record, as JSON."""
    settings = fleet_deps().settings()
    (stack,) = select_stacks(settings.project_dir, (tenant,), False)
    spec = load_tenant_spec(settings.project_dir, stack)
    masked = load_stack_file(stack_file(settings.project_dir, stack)).masked_config()
    if isinstance(masked.get(SECRETS_KEY), dict):  # names only, whatever a value looks like
        masked[SECRETS_KEY] = dict.fromkeys(masked[SECRETS_KEY], SECRET_MASK)
    record = FileDeployedStore(settings, project_name(settings.project_dir)).get(stack)
    out: dict[str, Any] = {
        "tenant": spec.id,
        "stack": stack,
        "config": masked,
        "deployed": json.loads(record.model_dump_json()) if record else None,
    }
    click.echo(json.dumps(out, indent=2, default=str))


@tenants.command()
@click.argument("tenant", required=False)
@tenant_field_options
def add(tenant: str | None, **given: Any) -> None:
    """Register a tenant: write a validated Pulumi.prod.<tenant>.yaml from flags and/or --from-file.

    Every tenant field has a flag (README "Tenant config" says what each means); a file gives them
    all at once, and flags given replace its values. Declared secrets get their values with
    `secrets set`. Nothing is written unless the whole tenant is valid and its hosts are its own.
    """
    settings = fleet_deps().settings()
    raw = tenant_raw(tenant, given)
    path = add_tenant(settings, raw)
    tenant = str(raw["id"])
    deploy = f"deploy with `python -m orchestrator up --tenant {tenant}`"
    names = [str(name) for name in raw.get("secret_names") or ()]
    if names:  # `up` refuses the stack until every declared secret has a value
        deploy = f"set its secrets ({', '.join(f'`{SECRETS_COMMAND} {tenant} {n}`' for n in names)}), then {deploy}"
    click.echo(f"registered {tenant}: {path.name}; {deploy}")


@tenants.command()
@click.argument("tenant")
@click.option("--yes", is_flag=True, help="Confirm: deletes the tenant's stack file (its encrypted secrets too).")
def remove(tenant: str, yes: bool) -> None:
    """Unregister a tenant whose edge was destroyed first (refuses while resources exist)."""
    settings = fleet_deps().settings()
    (stack,) = select_stacks(settings.project_dir, (tenant,), False)
    if not yes:
        raise click.UsageError(f"removing {tenant} deletes Pulumi.{stack}.yaml and its secrets; add --yes")
    remove_tenant(settings, stack)
    click.echo(f"removed {tenant}")


@tenants.command()
@click.option("--tag", required=True, metavar="tenant-<id>", help="The departed tenant's own script tag.")
@click.option("--dry-run", is_flag=True, help="List the scripts that carry the tag; delete nothing.")
@click.option("--yes", is_flag=True, help="Confirm the delete (not needed with --dry-run).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts (script names only).")
def sweep(tag: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Dispatch mode: delete the user Workers a departed tenant left in the namespace, by its tag.

    `destroy` of a dispatch tenant already sweeps its tag; this finishes one whose sweep failed, or
    clears what an earlier run left under other names. Refused while the tenant's stack still holds
    resources. Goes through the throttling proxy under the fleet lease (one API budget); reads
    CLOUDFLARE_API_TOKEN; prints and audits script names only.
    """
    settings = fleet_deps().settings()
    if sweepable_tenant(tag) is None:
        raise click.BadParameter(NOT_SWEEPABLE, param_hint="--tag")
    if not dry_run and not yes:
        raise click.UsageError(f"sweeping deletes every script tagged {tag}; look first with --dry-run, then add --yes")
    result = sweep_tag(settings, tag, dry_run=dry_run, holder=default_who(), audit=AuditLog(settings.audit_log))
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else result.describe())
