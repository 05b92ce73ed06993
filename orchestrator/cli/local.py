"""`local up|down|status|logs|health|push-config`: the whole fleet on this machine, in workerd (Miniflare).

State (persisted KV/D1, relay keys, pid, log) lives in CLAWDBOT_LOCAL_EDGE_DIR; tenants come
from the project's stack files (CLAWDBOT_PROJECT_DIR) and their secrets are decrypted with the
passphrase file (PULUMI_CONFIG_PASSPHRASE_FILE).
"""

from __future__ import annotations

import json
import sys
import time

import click

from orchestrator.config.secrets_provider import check_passphrase_env
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import load_platform_spec, select_tenant_stacks
from orchestrator.local_edge import LocalEdge, prepare_tenants, push_config
from orchestrator.local_edge.runtime import DEFAULT_HOST, DEFAULT_PORT, RuntimeInfo, Status
from orchestrator.local_edge.sizing import check_memory

STATUS_EXIT = {"running": 0, "starting": 1, "dead": 1, "stopped": 3}


def _progress(message: str) -> None:
    click.echo(f"… {message}", err=True)


def _edge(settings: Settings) -> LocalEdge:
    return LocalEdge(settings.local_edge_dir)


def describe(info: RuntimeInfo) -> list[str]:
    """How to reach each tenant, one line each (for people)."""
    lines = []
    for tenant in info.tenants:
        hosts = ", ".join(tenant.hostnames) or f"(no concrete hostname; worker {tenant.worker})"
        lines.append(f"  {tenant.tenant:<16} config v{tenant.config_version}  {hosts}")
    example = next((t.hostnames[0] for t in info.tenants if t.hostnames), None)
    if example:
        lines.append(f"  try: curl -H 'Host: {example}' {info.url}")
    return lines


@click.group()
def local() -> None:
    """Run every tenant's edge on this machine: one workerd process, routed by hostname.

    The same bundles Pulumi deploys, with each tenant's own persisted KV and D1, the relay key
    binding and sealed secrets. Use it to try a tenant change before `up`, or without a
    Cloudflare account at all.
    """


@local.command()
@click.argument("tenants", nargs=-1)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Loopback address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--config-ttl",
    type=click.IntRange(0, 3600),
    default=None,
    help="Override the Worker's config cache TTL in seconds (default: the contract's). "
    "For trying config pushes quickly; the deployed Worker keeps the contract's TTL.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds to wait for the runtime to be ready (default: 120 plus 0.5 per tenant; "
    "200 tenants start in about a minute on two busy cores).",
)
@click.option(
    "--memory-check/--no-memory-check",
    default=True,
    show_default=True,
    help="Refuse to start when this machine (MemAvailable, or the cgroup's memory limit) has less memory "
    "than the tenants need: about 256 MiB plus 7.5 MiB per tenant.",
)
def up(
    tenants: tuple[str, ...], host: str, port: int, config_ttl: int | None, timeout: float | None, memory_check: bool
) -> None:
    """Start the local edge with TENANTS (default: every tenant stack).

    Runs in the background; data persists across restarts. If a previous runtime died,
    it is cleaned up and restarted with its data intact. Says first how much memory the
    tenants need and refuses (exit 1) when the machine does not have it.
    """
    settings = Settings.from_env()
    edge = _edge(settings)
    edge.check_can_start(host, port)  # before rendering and decrypting every tenant
    check_passphrase_env(settings.passphrase_file)
    if memory_check:  # likewise: a refusal should be quick
        check_memory(len(select_tenant_stacks(settings.project_dir, list(tenants) or None)), say=_progress)
    prepared = prepare_tenants(
        settings.project_dir,
        edge.layout,
        passphrase_file=settings.passphrase_file,
        tenants=list(tenants) or None,
        progress=_progress,
    )
    info = edge.up(
        prepared,
        host=host,
        port=port,
        config_ttl_seconds=config_ttl,
        timeout_s=timeout,
        progress=_progress,
        platform=load_platform_spec(settings.project_dir),
        memory_check=False,  # checked above
    )
    click.echo(f"local edge running at {info.url} (pid {info.pid}); {len(info.tenants)} tenant(s):")
    for line in describe(info):
        click.echo(line)


@local.command()
def down() -> None:
    """Stop the local edge. Persisted KV and D1 data stay for the next `local up`."""
    stopped = _edge(Settings.from_env()).down()
    click.echo("local edge stopped" if stopped else "local edge was not running")


@local.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json: bool) -> None:
    """Show whether the local edge runs, and what. Exit 0 running, 1 dead or starting, 3 stopped."""
    current = _edge(Settings.from_env()).status()
    if as_json:
        click.echo(_status_json(current))
    else:
        click.echo(f"local edge: {current.state} — {current.reason}")
        if current.state == "running" and current.info is not None:
            if current.workerd_rss:
                click.echo(f"  workerd memory: {current.workerd_rss / 2**20:.0f} MiB")
            for line in describe(current.info):
                click.echo(line)
    sys.exit(STATUS_EXIT[current.state])


def _status_json(current: Status) -> str:
    doc = {
        "state": current.state,
        "reason": current.reason,
        "pid": current.pid,
        "workerd_rss_bytes": current.workerd_rss,
        "url": current.info.url if current.info else None,
        "tenants": [
            {
                "tenant": t.tenant,
                "hostnames": t.hostnames,
                "config_version": t.config_version,
                "bundle_hash": t.bundle_hash,
            }
            for t in (current.info.tenants if current.info else [])
        ],
    }
    return json.dumps(doc, indent=2)


@local.command()
@click.option(
    "-n",
    "--lines",
    default=50,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="How many of the last lines to show.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
def logs(lines: int, follow: bool) -> None:
    """Show the local runtime's log (requests, Worker console output, start-up)."""
    edge = _edge(Settings.from_env())
    click.echo(edge.log_tail(lines))
    if not follow:
        return
    path = edge.layout.log_file
    with open(path, encoding="utf-8", errors="replace") as handle:
        handle.seek(0, 2)
        try:
            while True:
                line = handle.readline()
                if line:
                    click.echo(line, nl=False)
                else:
                    time.sleep(0.2)
        except KeyboardInterrupt:
            return


@local.command(name="push-config")
@click.argument("tenant")
def push_config_(tenant: str) -> None:
    """Sign TENANT's config from its stack file into its local KV, without a restart.

    Bump clawdbot:tenant.config_version first: the Worker never goes backwards and refuses a
    changed config under the same version. It serves the new version after its cache TTL.
    """
    settings = Settings.from_env()
    check_passphrase_env(settings.passphrase_file)
    result = push_config(_edge(settings), settings.project_dir, tenant)
    if not result.changed:
        click.echo(f"tenant {tenant}: KV already holds config version {result.version}; nothing pushed")
        return
    before = "nothing valid" if result.previous_version is None else f"version {result.previous_version}"
    click.echo(
        f"tenant {tenant}: pushed config version {result.version} (KV held {before}); "
        f"the Worker serves it within {result.ttl_seconds} s"
    )


@local.command(name="health")
@click.option("--tenant", "tenants", multiple=True, help="Probe only this tenant (repeatable). Default: all.")
def health_(tenants: tuple[str, ...]) -> None:
    """Probe every local tenant's health endpoint and show the fleet table; exit 1 if any is not ok."""
    # Here, not at the top: `local up` should not pay for importing rich's tables.
    from orchestrator.cli.tables import print_table
    from orchestrator.ops.health import health_table, local_checks

    settings = Settings.from_env()
    checks = local_checks(_edge(settings), settings.project_dir, tenants)
    print_table(health_table(checks, "Fleet health (local edge)"))
    if not all(c.ok for c in checks):
        sys.exit(1)
