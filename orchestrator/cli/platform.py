"""`platform init`: write the platform stack (`Pulumi.prod.yaml`) from flags or prompts.

Validated as every reader validates it (`PlatformSpec`), read back before it replaces anything,
and an operator's file is replaced only with --force (then only `clawdbot:platform` changes).
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from orchestrator.config.platform_stack import validate_platform, write_platform_stack
from orchestrator.config.settings import Settings
from orchestrator.core.model import PlatformSpec
from orchestrator.core.names import PLATFORM_STACK
from orchestrator.fleet.audit import AuditLog

ISOLATIONS = ("workers", "dispatch")


def _interactive() -> bool:
    """Prompt only a person: a script without a flag gets a usage error, not a hang."""
    return sys.stdin.isatty()


def _plans(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """`--plan NAME=CPU_MS,SUBREQUESTS` (repeatable) as the model's `plans` mapping."""
    plans: dict[str, dict[str, int]] = {}
    for text in values:
        name, sep, rest = text.partition("=")
        cpu, sep2, subrequests = rest.partition(",")
        if not (sep and sep2 and cpu.isdigit() and subrequests.isdigit()):
            raise click.BadParameter(f"{text!r}: expected NAME=CPU_MS,SUBREQUESTS (e.g. standard=50,50)")
        if name in plans:
            raise click.BadParameter(f"plan {name!r} given twice")
        plans[name] = {"cpu_ms": int(cpu), "subrequests": int(subrequests)}
    return plans


@click.group()
def platform() -> None:
    """Write the platform stack (Pulumi.prod.yaml): account, environment, compatibility date, isolation."""


@platform.command()
@click.option("--account-id", help="Cloudflare account id (32 hex) that holds every tenant's resources.")
@click.option("--environment", help="Part of every name (clawdbot-<env>-<tenant>): 2-16 of a-z 0-9. Default: prod.")
@click.option("--compatibility-date", help="Default Workers compatibility date, YYYY-MM-DD, not in the future.")
@click.option("--isolation", type=click.Choice(ISOLATIONS), help="workers (default): a Worker per tenant; dispatch: "
              "Workers for Platforms (past 500 tenants).")  # fmt: skip
@click.option("--compatibility-flag", "flags", multiple=True, help="Default compatibility flag (repeatable).")
@click.option("--observability/--no-observability", default=None, help="Workers Logs for every tenant (default on).")
@click.option("--logs-sampling-rate", type=float, help="Share of requests logged, 0 < rate <= 1 (default 1).")
@click.option("--plan", "plans", multiple=True, metavar="NAME=CPU_MS,SUBREQUESTS", callback=_plans,
              help="Dispatch mode: a plan's per-call limits (repeatable; default standard=50,50).")  # fmt: skip
@click.option("--default-plan", help="Dispatch mode: the plan of tenants that name none (default standard).")
@click.option("--saas-zone-id", help="Dispatch mode: the Cloudflare for SaaS zone's id (with --saas-zone-name).")
@click.option("--saas-zone-name", help="Dispatch mode: the Cloudflare for SaaS zone's name.")
@click.option("--fallback-origin", help="Dispatch mode: the SaaS zone's fallback origin hostname.")
@click.option("--force", is_flag=True, help="Replace clawdbot:platform of an existing platform stack.")
def init(
    account_id: str | None,
    environment: str | None,
    compatibility_date: str | None,
    isolation: str | None,
    flags: tuple[str, ...],
    observability: bool | None,
    logs_sampling_rate: float | None,
    plans: dict[str, dict[str, int]],
    default_plan: str | None,
    saas_zone_id: str | None,
    saas_zone_name: str | None,
    fallback_origin: str | None,
    force: bool,
) -> None:
    """Write Pulumi.prod.yaml in the project directory from these flags, prompting for what is missing.

    Without a terminal, --account-id and --compatibility-date are required. A file that still holds
    the shipped example (what setup-vps.sh copies) is replaced; any other only with --force, and then
    only clawdbot:platform changes (encryptionsalt, cloudflare:* keys and comments stay).
    """
    if _interactive():
        account_id = account_id or click.prompt("Cloudflare account id (32 hex)")
        environment = environment or click.prompt("Environment", default="prod")
        compatibility_date = compatibility_date or click.prompt(
            "Compatibility date", default=dt.datetime.now(dt.UTC).date().isoformat()
        )
        isolation = isolation or click.prompt("Isolation", type=click.Choice(ISOLATIONS), default="workers")
    for value, flag in ((account_id, "--account-id"), (compatibility_date, "--compatibility-date")):
        if not value:
            raise click.UsageError(f"{flag} is required (no terminal to prompt on)")
    raw: dict[str, Any] = {"account_id": account_id, "compatibility_date": compatibility_date}
    optional: dict[str, Any] = {
        "environment": environment,
        "isolation": isolation,
        "compatibility_flags": list(flags) or None,
        "observability": observability,
        "logs_sampling_rate": logs_sampling_rate,
        "plans": plans or None,
        "default_plan": default_plan,
        "fallback_origin": fallback_origin,
    }
    if saas_zone_id or saas_zone_name:
        optional["saas_zone"] = {"id": saas_zone_id, "name": saas_zone_name}
    raw.update({key: value for key, value in optional.items() if value is not None})
    spec = validate_platform(raw)
    settings = Settings.from_env()
    written = write_platform_stack(settings.project_dir, spec, raw, force=force)
    AuditLog(settings.audit_log).record(stack=PLATFORM_STACK, operation="platform-init", result="ok")
    click.echo(f"wrote {written.path}: account {spec.account_id}, environment {spec.environment}, "
               f"compatibility date {spec.compatibility_date}, isolation {spec.isolation}")  # fmt: skip
    for line in _consequences(written.previous, spec):
        click.echo(line)


def _consequences(before: PlatformSpec | None, after: PlatformSpec) -> list[str]:
    """What a changed platform setting does to the fleet on the next `up` (said, not prevented)."""
    if before is None:
        return []
    lines = []
    if before.environment != after.environment:
        lines.append(f"note: environment {before.environment} -> {after.environment} renames every tenant's "
                     "resources (replaced on the next up): run `preview --all` first")  # fmt: skip
    if before.account_id != after.account_id:
        lines.append("note: a new account id moves every tenant to another account on the next up")
    if before.isolation != after.isolation:
        lines.append(f"note: isolation {before.isolation} -> {after.isolation}: see docs/dispatch-mode.md before `up`")
    return lines
