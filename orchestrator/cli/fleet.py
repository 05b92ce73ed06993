"""Fleet commands: preview, up, refresh, destroy, drift, status, recover, outputs (`health` is cli/health.py).

Exit codes: 0 all good, 1 a tenant failed, drifted or was unhealthy (or a domain error), 2 usage.
People get a table on stdout and progress on stderr; scripts pass `--json` for one JSON document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.cli.fleet_options import (
    fleet_options,
    policy_config_option,
    run_settings,
    run_sizing,
    tenant_selection,
)
from orchestrator.cli.tables import print_table, table_console
from orchestrator.cluster.engines import run_on_engine
from orchestrator.config.secrets_provider import check_passphrase_env
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import select_tenant_stacks, tenant_stacks
from orchestrator.core.drift import IGNORED
from orchestrator.core.names import tenant_of, tenant_stack
from orchestrator.engine.budget import ThrottleConfig
from orchestrator.fleet import health
from orchestrator.fleet.audit import AuditLog, default_who
from orchestrator.fleet.changes import Rendered, bundle_renderer
from orchestrator.fleet.ports import HealthGate, Operation, StackExecutor
from orchestrator.fleet.report import FleetReport, RolloutOptions, drift_options
from orchestrator.fleet.runner import NOTED
from orchestrator.ops.fleet_run import (
    DEFAULT_SIZING,
    Engine,
    RunSeams,
    automation_executor,
    recover_stack,
)
from orchestrator.ops.status import status_ok, status_rows


@dataclass
class FleetDeps:
    """Seams for tests: how the executor, gate and renderer are built (defaults are the real ones)."""

    executor: Callable[[Settings, str | None], StackExecutor] = automation_executor
    gate: HealthGate | None = None
    render: Callable[[Path], Callable[[str], Rendered]] = bundle_renderer
    throttle: bool = True
    settings: Callable[[], Settings] = Settings.from_env
    stderr: Console = field(default_factory=lambda: Console(stderr=True))


def fleet_deps() -> FleetDeps:
    """The seams of this invocation (tests pass theirs as the click `obj`), else the real ones."""
    ctx = click.get_current_context()
    found = ctx.find_object(FleetDeps)
    return found if found is not None else FleetDeps()


def select_stacks(project_dir: Path, tenants: Sequence[str], all_: bool) -> list[str]:
    """`--tenant X` (repeatable) or `--all`, exactly one; unknown tenants are a usage error."""
    if bool(tenants) == all_:
        raise click.UsageError("choose the tenants: --tenant ID (repeatable) or --all")
    return select_tenant_stacks(project_dir, None if all_ else tenants)  # UnknownTenantError: exit 2 (cli/errors.py)


def _progress(console: Console, total: int) -> tuple[Progress, Callable[[str, str | None, str], None]]:
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("stacks", total=total)

    def on_event(event: str, stack: str | None, detail: str) -> None:
        if not bar.live.is_started:
            bar.start()  # on the first event: an error before the run starts prints without a bar
        if event in ("done", "skip"):
            bar.advance(task)
        if event in NOTED:
            who = f"{tenant_of(stack)}: " if stack else ""
            console.print(f"[dim]{event}[/dim] {who}{detail}", highlight=False)
        if event == "start" and stack:
            bar.update(task, description=f"{detail} {tenant_of(stack)}")

    return bar, on_event


def run_operation(
    stacks: list[str],
    options: RolloutOptions,
    *,
    as_json: bool,
    budget: int,
    gate_timeout: float = health.GATE_TIMEOUT_S,
) -> None:
    deps = fleet_deps()
    engine: Engine = click.get_current_context().meta.get("fleet.engine", "embedded")
    if engine == "temporal":
        _refuse_embedded_only()
    settings = run_settings(deps.settings())
    gate = deps.gate or partial(health.gate, timeout_s=gate_timeout, interval_s=health.GATE_INTERVAL_S)
    seams = RunSeams(deps.executor, gate, deps.render, budget=budget, throttle=deps.throttle)
    bar, on_event = _progress(deps.stderr, len(stacks))
    try:
        report = run_on_engine(
            engine,
            settings,
            stacks,
            options,
            seams,
            audit=AuditLog(settings.audit_log),
            holder=default_who(),
            progress=on_event,
            gate_timeout_s=gate_timeout,
        )
    finally:
        if bar.live.is_started:
            bar.stop()
    _print_report(report, as_json)
    if report.exit_code:
        click.get_current_context().exit(report.exit_code)


def _refuse_embedded_only() -> None:
    """Options a cluster run cannot honour from here: each node's worker has its own budget and pack config."""
    ctx = click.get_current_context()
    given = [
        f"--{name.replace('_', '-')}"
        for name in ("api_budget", "api_budget_key", "policy_config")
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(
            f"{', '.join(given)} applies to --engine embedded: with --engine temporal each node's worker "
            "spends its own share of the budget (`worker --api-budget`) and reads its own CLAWDBOT_POLICY_CONFIG"
        )


def _print_report(report: FleetReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    table = Table(title=f"{report.operation}: {', '.join(f'{k} {v}' for k, v in sorted(report.counts().items()))}")
    for column in ("tenant", "result", "wave", "bundle", "changes", "detail"):
        table.add_column(column)
    for r in report.results:
        changes = " ".join(f"{k}={v}" for k, v in sorted(r.changes.items()) if k != "same" and v)
        table.add_row(
            r.tenant,
            r.result.value,
            "" if r.wave is None else str(r.wave),
            (r.bundle_hash or "")[:12],
            changes,
            r.detail,
        )
    console = table_console()
    console.print(table)
    for r in report.results:
        for line in r.advice:
            console.print(f"[bold]{r.tenant}:[/bold] {line}", highlight=False, soft_wrap=True)
    if report.halted:
        console.print(f"[bold red]halted:[/bold red] {report.halt_reason}", highlight=False)


@click.command()
@fleet_options
@policy_config_option
@click.option("--expect-no-changes", is_flag=True, help="Report any planned change as drift (exit 1).")
def preview(
    tenants: tuple[str, ...],
    all_: bool,
    concurrency: int | None,
    api_budget: int,
    as_json: bool,
    expect_no_changes: bool,
) -> None:
    """Show what `up` would change for the selected tenants (no changes made)."""
    settings = fleet_deps().settings()
    stacks = select_stacks(settings.project_dir, tenants, all_)
    sizing = run_sizing(settings, api_budget, concurrency)
    options = RolloutOptions(Operation.PREVIEW, concurrency=sizing.concurrency, drift_check=expect_no_changes)
    run_operation(stacks, options, as_json=as_json, budget=api_budget)


@click.command()
@fleet_options
@policy_config_option
@click.option(
    "--wave-size",
    type=click.IntRange(1, 1000),
    default=None,
    show_default=f"{DEFAULT_SIZING.wave_size} for {ThrottleConfig.requests:,} requests / 5 min",
    help="Tenants per wave after the canary. Default: computed from --api-budget, so that each wave's start "
    "and health gate leave the budget idle for at most 8 % of the wave; a smaller wave puts fewer "
    "tenants at risk before its gate.",
)
@click.option("--canary", metavar="ID", help="Tenant deployed alone first (default: the first changed one).")
@click.option(
    "--continue-on-error", is_flag=True, help="Keep going past failed tenants; a failed health gate still halts."
)
@click.option(
    "--rollback",
    is_flag=True,
    help="On a failed health gate, re-apply the last good stack file to the wave and gate it again "
    "(refused for a tenant when the code changed since its last good deploy). It rolls forward: when the "
    "failed up raised config_version, the old file is re-issued one above the highest deployed version, "
    "which the Worker adopts.",
)
@click.option(
    "--allow-config-rollback",
    is_flag=True,
    help="Deploy a config_version lower than the deployed one (refused otherwise). The Worker still never "
    "goes backwards: it refuses the older config in KV and reports degraded (rollback_refused).",
)
@click.option("--force", is_flag=True, help="Deploy even tenants whose bundle and config are unchanged.")
@click.option("--no-health-gate", is_flag=True, help="Do not poll /_edge/health between waves.")
@click.option(
    "--gate-timeout",
    type=click.FloatRange(1, 3600),
    default=health.GATE_TIMEOUT_S,
    show_default=True,
    help="Seconds a wave may take to turn healthy.",
)
def up(
    tenants: tuple[str, ...],
    all_: bool,
    concurrency: int | None,
    api_budget: int,
    as_json: bool,
    wave_size: int | None,
    canary: str | None,
    continue_on_error: bool,
    rollback: bool,
    allow_config_rollback: bool,
    force: bool,
    no_health_gate: bool,
    gate_timeout: float,
) -> None:
    """Deploy changed tenants: a canary, then waves, with a health gate between waves.

    Tenants whose stack file and rendered bundle equal what was last deployed are skipped without
    starting the engine. A failed canary or health gate halts the rollout.
    """
    settings = fleet_deps().settings()
    stacks = select_stacks(settings.project_dir, tenants, all_)
    if canary is not None and tenant_stack(canary) not in stacks:
        raise click.UsageError(f"--canary {canary} is not among the selected tenants")
    sizing = run_sizing(settings, api_budget, concurrency, wave_size)
    options = RolloutOptions(
        Operation.UP,
        concurrency=sizing.concurrency,
        wave_size=sizing.wave_size,
        canary=tenant_stack(canary) if canary else None,
        continue_on_error=continue_on_error,
        rollback=rollback,
        allow_config_rollback=allow_config_rollback,
        force=force,
        health_gate=not no_health_gate,
    )
    run_operation(stacks, options, as_json=as_json, budget=api_budget, gate_timeout=gate_timeout)


@click.command()
@fleet_options
@click.option(
    "--preview-only", is_flag=True, help="Show what changed at Cloudflare without writing state (exit 1 on drift)."
)
@click.option("--clear-pending-creates", is_flag=True, help="Drop pending creates left by a killed run.")
def refresh(
    tenants: tuple[str, ...],
    all_: bool,
    concurrency: int | None,
    api_budget: int,
    as_json: bool,
    preview_only: bool,
    clear_pending_creates: bool,
) -> None:
    """Read the real state of the selected tenants' resources from Cloudflare (3+ API calls per Worker)."""
    settings = fleet_deps().settings()
    stacks = select_stacks(settings.project_dir, tenants, all_)
    options = RolloutOptions(
        Operation.REFRESH,
        concurrency=run_sizing(settings, api_budget, concurrency).concurrency,
        drift_check=preview_only,
        preview_only=preview_only,
        clear_pending_creates=clear_pending_creates,
    )
    run_operation(stacks, options, as_json=as_json, budget=api_budget)


@click.command()
@fleet_options
@click.option("--yes", is_flag=True, help="Confirm: this deletes the tenants' Workers, KV and D1 data.")
def destroy(
    tenants: tuple[str, ...], all_: bool, concurrency: int | None, api_budget: int, as_json: bool, yes: bool
) -> None:
    """Delete every Cloudflare resource of the selected tenants except protected ones (their D1 databases).

    What was kept is reported per tenant, with the exact commands that remove it deliberately.
    """
    settings = fleet_deps().settings()
    stacks = select_stacks(settings.project_dir, tenants, all_)
    if not yes:
        raise click.UsageError(f"destroy deletes {len(stacks)} tenants' edges; add --yes to confirm")
    options = RolloutOptions(Operation.DESTROY, concurrency=run_sizing(settings, api_budget, concurrency).concurrency)
    run_operation(stacks, options, as_json=as_json, budget=api_budget)


_IGNORE_DOC = "; ".join(sorted({f"{r.type.rsplit(':', 1)[-1]}.{r.property}" for r in IGNORED}))


@click.command(
    help=f"""Detect drift: refresh --preview-only per tenant, classified from engine events.

Known perpetual diffs are ignored for in-place updates only: {_IGNORE_DOC}.
Exit 1 when any tenant drifted."""
)
@fleet_options
def drift(tenants: tuple[str, ...], all_: bool, concurrency: int | None, api_budget: int, as_json: bool) -> None:
    settings = fleet_deps().settings()
    stacks = select_stacks(settings.project_dir, tenants, all_)
    sizing = run_sizing(settings, api_budget, concurrency)
    options = drift_options(sizing.concurrency)
    run_operation(stacks, options, as_json=as_json, budget=api_budget)


@click.command()
@tenant_selection
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
@click.option("--no-health", is_flag=True, help="Do not probe the tenants' /_edge/health.")
def status(tenants: tuple[str, ...], all_: bool, as_json: bool, no_health: bool) -> None:
    """Per tenant: isolation mode, last update, deployed bundle hash, last drift check and live health (no engine)."""
    deps = fleet_deps()
    settings = deps.settings()
    check_passphrase_env(settings.passphrase_file)
    stacks = (
        select_stacks(settings.project_dir, tenants, all_) if (tenants or all_) else tenant_stacks(settings.project_dir)
    )
    rows, _ = status_rows(settings, stacks, probe=not no_health)
    bad = not status_ok(rows)
    if as_json:
        click.echo(json.dumps({"ok": not bad, "tenants": rows}, indent=2))
    else:
        table = Table(title="fleet status")
        for column in ("tenant", "isolation", "last update", "bundle", "drift", "health"):
            table.add_column(column)
        for r in rows:
            table.add_row(
                r["tenant"],
                r["isolation"] or "?",
                r["last_update"] or "never",
                (r["bundle_hash"] or "")[:12],
                r["drift"] or "unknown",
                r["health"] or "-",
            )
        print_table(table)
    if bad:
        click.get_current_context().exit(1)


@click.command()
@tenant_selection
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def recover(tenants: tuple[str, ...], all_: bool, as_json: bool) -> None:
    """Clear stale locks left by a killed run and say exactly what else to run (pending operations)."""
    settings = fleet_deps().settings()
    check_passphrase_env(settings.passphrase_file)
    stacks = select_stacks(settings.project_dir, tenants, all_)
    audit = AuditLog(settings.audit_log)
    out: list[dict[str, Any]] = []
    for stack in stacks:
        report, cleared = recover_stack(settings, audit, stack)
        out.append(
            {
                "tenant": tenant_of(stack),
                "cleared": [lock.where for lock in cleared],
                "advice": list(report.advice),
                "clean": report.clean,
            }
        )
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        for item in out:
            lines = [f"cleared stale lock {p}" for p in item["cleared"]] + list(item["advice"])
            click.echo(f"{item['tenant']}: " + ("; ".join(lines) if lines else "nothing to recover"))
    if any(item["advice"] for item in out):
        click.get_current_context().exit(1)


@click.command()
@click.option("--tenant", "tenant", required=True, metavar="ID", help="The tenant whose stack outputs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def outputs(tenant: str, as_json: bool) -> None:
    """A tenant's stack outputs as last deployed (secret outputs masked; needs the Pulumi CLI)."""
    deps = fleet_deps()
    settings = deps.settings()
    check_passphrase_env(settings.passphrase_file)
    (stack,) = select_stacks(settings.project_dir, (tenant,), False)
    values = deps.executor(settings, None).outputs(stack)
    if as_json:
        click.echo(json.dumps({"tenant": tenant, "outputs": values}, indent=2))
        return
    table = Table(title=f"outputs of {tenant}")
    table.add_column("output")
    table.add_column("value")
    for key, value in sorted(values.items()):
        table.add_row(key, value if isinstance(value, str) else json.dumps(value))
    print_table(table)
