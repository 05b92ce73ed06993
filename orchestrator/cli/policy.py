"""`policy check --stack S | --all`: the CrossGuard pack over tenant stacks, without the Pulumi CLI.

Prints one line per violation as `pulumi preview --policy-pack` reports it (enforcement level,
policy, URN, message) and a summary per stack; exits 1 when any stack has a mandatory
violation or could not be evaluated. `--json` prints the same as one JSON document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import click

from orchestrator.config.ownership import fleet_policy_config
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import tenant_stacks
from orchestrator.offline.errors import PolicyRunError
from orchestrator.offline.policy_pack import load_pack, load_policy_config
from orchestrator.offline.policy_runner import StackResult, check_stacks


@click.group()
def policy() -> None:
    """Run the CrossGuard policy pack (policies/) in-process."""


def _summary(result: StackResult) -> str:
    if result.error is not None:
        return f"{result.stack}: error: {result.error}"
    mandatory = sum(v.mandatory for v in result.violations)
    if not result.violations:
        return f"{result.stack}: ok ({result.resources} resources)"
    return (
        f"{result.stack}: {len(result.violations)} violation(s), {mandatory} mandatory ({result.resources} resources)"
    )


def _print_text(results: Sequence[StackResult]) -> None:
    pack = load_pack()
    click.echo(f"Policy pack {pack.name}@v{pack.version} ({len(pack.policies)} policies)")
    for result in results:
        click.echo(_summary(result))
        for violation in result.violations:
            click.echo("    " + violation.line())
    failed = [r.stack for r in results if r.failed]
    click.echo(
        f"{len(results) - len(failed)} of {len(results)} stack(s) passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )


def _print_json(results: Sequence[StackResult]) -> None:
    document = [
        {
            "stack": r.stack,
            "resources": r.resources,
            "error": r.error,
            "passed": not r.failed,
            "violations": [asdict(v) for v in r.violations],
        }
        for r in results
    ]
    click.echo(json.dumps(document, indent=2))


@policy.command("check")
@click.option("--stack", "stacks", multiple=True, metavar="STACK", help="Stack to check, e.g. prod.acme (repeatable).")
@click.option("--all", "all_stacks", is_flag=True, help="Check every tenant stack (Pulumi.prod.<tenant>.yaml).")
@click.option("--preview", is_flag=True, help="Leave computed values unknown, as `pulumi preview` does.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--project-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Pulumi project directory (default: CLAWDBOT_PROJECT_DIR or this checkout).",
)
@click.option(
    "--policy-config",
    "policy_config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help=(
        "JSON per-policy config, as `pulumi preview --policy-pack-config`: "
        '{"kv-secrets-encrypted": {"allowedNames": ["cache_key"]}, "compatibility-date-fresh": "disabled"}.'
    ),
)
def check(
    stacks: tuple[str, ...],
    all_stacks: bool,
    preview: bool,
    as_json: bool,
    project_dir: Path | None,
    policy_config: Path | None,
) -> None:
    """Evaluate the pack over tenant stacks; exit 1 on a mandatory violation.

    With --policy-config, each policy takes its settings (allowedNames, secretWords, thresholds)
    and enforcement level from the file, over the schema defaults and what the stack says.
    """
    if bool(stacks) == all_stacks:
        raise click.UsageError("give either --stack S (repeatable) or --all")
    try:
        overrides = load_policy_config(policy_config) if policy_config is not None else None
    except PolicyRunError as exc:
        raise click.UsageError(str(exc)) from None
    project = project_dir or Settings.from_env().project_dir
    chosen = list(stacks) if stacks else tenant_stacks(project)
    if not chosen:
        raise click.ClickException(f"no tenant stacks (Pulumi.prod.<tenant>.yaml) in {project}")
    results = check_stacks(project, chosen, preview=preview, overrides=overrides)
    if as_json:
        _print_json(results)
    else:
        _print_text(results)
    if any(r.failed for r in results):
        raise SystemExit(1)


@policy.command("fleet-config")
@click.option(
    "--project-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Pulumi project directory (default: CLAWDBOT_PROJECT_DIR or this checkout).",
)
def fleet_config(project_dir: Path | None) -> None:
    """Print the policy config that gives the pack the fleet's hostnames, as JSON.

    One stack cannot see the others, so `hostname-ownership` learns every registered tenant's
    zone, routes and custom domains from this config. Pass it to the real CLI:

        python -m orchestrator policy fleet-config > fleet-policy.json
        pulumi preview --stack prod.acme --policy-pack policies --policy-pack-config fleet-policy.json

    `policy check` computes the same config itself.
    """
    project = project_dir or Settings.from_env().project_dir
    click.echo(json.dumps(fleet_policy_config(project), indent=2, sort_keys=True))
