"""The fleet's health, probed: every tenant's `/_edge/health` on the local edge or on Cloudflare.

Both targets are judged alike (`orchestrator.fleet.health`): the right tenant, the bundle we
deployed, at least the config version we deployed, and the Worker's own ok/degraded. The `health`
command, `local health` and the demo print the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.table import Table

from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import select_tenant_stacks
from orchestrator.core.contract import health_path
from orchestrator.core.health import HealthCheck, HealthTarget
from orchestrator.core.names import tenant_stack
from orchestrator.fleet.health import probe
from orchestrator.local_edge import LocalEdge, probe_local
from orchestrator.local_edge.deploy import load_bundles

MAX_PARALLEL = 8
VERDICT_STYLE = {"ok": "green", "degraded": "yellow"}


def health_table(checks: Sequence[HealthCheck], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("tenant", "status", "config", "d1 schema", "bundle", "detail"):
        table.add_column(column)
    for check in checks:
        doc = check.doc
        style = VERDICT_STYLE.get(check.verdict, "red")
        table.add_row(
            check.target.tenant,
            f"[{style}]{check.verdict}[/{style}]",
            f"v{doc.config.version} ({doc.config.source})" if doc else "-",
            doc.d1.schema_state if doc else "-",
            doc.script.version[:12] if doc else "-",
            check.reason,
        )
    return table


def check_json(check: HealthCheck) -> dict[str, object]:
    return {
        "tenant": check.target.tenant,
        "verdict": check.verdict,
        "reason": check.reason,
        "url": check.target.url,
        "health": check.doc.model_dump(mode="json", by_alias=True) if check.doc else None,
    }


def local_checks(edge: LocalEdge, project_dir: Path, tenants: Sequence[str]) -> list[HealthCheck]:
    """One probe per tenant the local edge runs (`tenants`, or all of them); a tenant that is not
    registered is refused first, as everywhere (then one not running is the local edge's error)."""
    if tenants:
        select_tenant_stacks(project_dir, tenants)
    info = edge.running()
    chosen = [info.tenant(t) for t in tenants] if tenants else info.tenants
    client = edge.edge_client()
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL) as pool:
        return list(pool.map(lambda t: probe_local(client, t), chosen))


def remote_targets(settings: Settings, tenants: Sequence[str]) -> list[HealthTarget]:
    """What each tenant should serve on Cloudflare, from its stack file (as `up` renders it)."""
    stacks = select_tenant_stacks(settings.project_dir, list(tenants) or None)
    targets = []
    for spec, bundle in load_bundles(settings.project_dir, stacks):
        host = bundle.health_host
        url = f"https://{host}{health_path()}" if host else "(no route reaches the health path)"
        targets.append(HealthTarget(tenant_stack(spec.id), spec.id, url, bundle.bundle_hash, bundle.config_version))
    return targets


def remote_checks(settings: Settings, tenants: Sequence[str]) -> list[HealthCheck]:
    targets = remote_targets(settings, tenants)
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL) as pool:
        return list(pool.map(probe, targets))
