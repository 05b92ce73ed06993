"""`plan`: what a stack would register, without credentials or the Pulumi CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from orchestrator.config.ownership import check_registered_ownership
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec, unset_secrets
from orchestrator.core.names import PLATFORM_STACK, is_tenant_stack, stack_name_from_path, tenant_of


def _short_type(type_: str) -> str:
    return type_.rsplit(":", 1)[-1]


def _render_text(document: dict[str, Any]) -> str:
    lines = [f"Stack {document['stack']}: {len(document['resources'])} resources (offline plan, mocked provider)"]
    for resource in document["resources"]:
        flag = " [protected]" if resource["protect"] else ""
        lines.append(f"+ {_short_type(resource['type'])} {resource['name']}{flag}")
        for key, value in sorted(resource["inputs"].items()):
            if value in (None, [], {}):
                continue
            lines.append(f"      {key}: {json.dumps(value, ensure_ascii=False, sort_keys=True)}")
    lines.append("Outputs:")
    lines.extend(f"    {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in document["outputs"].items())
    return "\n".join(lines)


@click.command()
@click.option("--stack", help="Stack name, e.g. prod.acme (its Pulumi.<stack>.yaml in the project directory).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Path to a Pulumi.<stack>.yaml instead of --stack; its directory is the project directory.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON for scripts.")
def plan(stack: str | None, config_path: Path | None, as_json: bool) -> None:
    """Show what a stack would register, without credentials or the Pulumi CLI.

    Runs the real Pulumi program under mocks that answer like the Cloudflare provider and
    refuse what Cloudflare would refuse. Secret values are never read: they show as [secret].
    Exits 1 with a one-line error when the stack's config is invalid, or when its zone, a route
    or a custom domain reaches a hostname another registered tenant owns.
    """
    if (stack is None) == (config_path is None):
        raise click.UsageError("give exactly one of --stack or --config")
    if config_path is not None:
        project_dir, stack = config_path.parent, stack_name_from_path(config_path)
    else:
        project_dir = Settings.from_env().project_dir
    assert stack is not None
    # The program validates again; checking first answers a bad (or hostile) file in a fraction
    # of the time the program's imports take, and before anything of it is loaded.
    if stack == PLATFORM_STACK:
        load_platform_spec(project_dir)
    else:
        spec = load_tenant_spec(project_dir, stack)
        if is_tenant_stack(stack):
            check_registered_ownership(project_dir, spec)
    from orchestrator.offline.plan import plan_document, plan_json
    from orchestrator.offline.session import run_offline

    document = plan_document(run_offline(project_dir, stack))
    unset = unset_secrets(project_dir, stack) if is_tenant_stack(stack) else []
    document["unset_secrets"] = unset
    click.echo(plan_json(document) if as_json else _render_text(document))
    if unset and not as_json:
        click.echo(f"Not set yet (`up` refuses the stack until they are): {', '.join(unset)}")
        for name in unset:
            click.echo(f"    python -m orchestrator secrets set {tenant_of(stack)} {name}")
