"""EdgeBundle → what the runner gives Miniflare for one tenant. Pure: no I/O, no processes.

This is the local twin of `components.tenant_edge.TenantEdge`: the same bundle, the same binding
names and types, the same KV keys and values, the same migrations, the routes and custom domains
turned into hostname routes of the one local runtime. The parity tests hold the two together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from orchestrator.core.errors import ConfigError
from orchestrator.core.migrations import Migration
from orchestrator.core.model import FrozenModel
from orchestrator.core.render import EdgeBundle, split_embedded

CONTROL_COMPATIBILITY_DATE = "2025-09-01"
"""For the runtime's own helper workers (fallback, control), never for a tenant's Worker."""


class PlanModule(FrozenModel):
    name: str
    content: str


class PlanBinding(FrozenModel):
    name: str
    type: Literal["kv_namespace", "d1", "secret_text", "plain_text"]
    value: str | None = Field(default=None, repr=False)
    """Text bindings only: the relay key (secret_text) or the literal text; never printed."""


class PlanMigration(FrozenModel):
    name: str
    sql: str


class TenantPlan(FrozenModel):
    tenant: str
    worker: str
    compatibility_date: str
    compatibility_flags: tuple[str, ...]
    main_module: str
    modules: tuple[PlanModule, ...]
    bindings: tuple[PlanBinding, ...]
    kv_namespace: str
    d1_database: str
    routes: tuple[str, ...]
    kv: dict[str, str] = Field(repr=False)
    """KV key → value text written at bring-up (signed config, secret envelopes)."""
    migrations: tuple[PlanMigration, ...]
    hostnames: tuple[str, ...]
    bundle_hash: str
    config_version: int
    egress: tuple[str, ...] = ()
    """Dispatch mode: the tenant's allow-list, the outbound Worker's parameters for its user Worker."""


class PlanKvEntry(FrozenModel):
    key: str
    value: str
    metadata: str | None = None


class DispatchPlan(FrozenModel):
    """Dispatch mode: the real dispatch and outbound Workers in front of every tenant (tools/dispatch.mjs)."""

    settings: dict[str, Any]
    """What the platform stack renders into `settings.js` (orchestrator.core.dispatch.dispatch_settings)."""
    compatibility_date: str
    routes_kv: str
    """The routing KV namespace's local id (persisted like the tenants', rewritten at every start)."""
    routing: tuple[PlanKvEntry, ...]


class RuntimePlan(FrozenModel):
    """The runner's whole input (stdin JSON); holds relay keys and the control token."""

    host: str
    port: int
    kv_persist: str
    """Directory of every tenant's persisted KV (StateLayout.kv_dir)."""
    d1_persist: str
    """Directory of every tenant's persisted D1 (StateLayout.d1_dir)."""
    ready_file: str
    control_token: str = Field(repr=False)
    control_compatibility_date: str = CONTROL_COMPATIBILITY_DATE
    config_ttl_seconds: int
    """The Worker's config cache TTL in this runtime (the contract's, unless overridden for a test)."""
    contract: dict[str, Any]
    tenants: tuple[TenantPlan, ...]
    dispatch: DispatchPlan | None = None
    """Set in dispatch mode: requests go to the dispatcher, which routes them by hostname."""


def local_routes(bundle: EdgeBundle) -> tuple[str, ...]:
    """Route patterns of the local runtime: the Workers routes as they are, each custom domain as `<host>/*`.

    Miniflare matches them like Cloudflare does (host, optional leading `*`, path prefix with
    trailing `*`, most specific first), so a path-restricted route stays path-restricted locally.
    In dispatch mode they only say which hostnames reach the tenant: the runner gives the user
    Worker no route, so only the dispatcher is reachable, as on Cloudflare.
    """
    return (*bundle.routes, *(f"{domain}/*" for domain in bundle.custom_domains))


def with_config_ttl(content: str, seconds: int) -> str:
    """The bundle with its embedded `contract.config_cache_ttl_seconds` replaced (tests and demos only).

    The deployed Worker re-reads KV every `config_cache_ttl_seconds`; a shorter TTL lets a test see
    a KV fault without waiting that out. Everything else in the module stays as rendered.
    """
    try:
        head, body, tail = split_embedded(content)
    except ValueError as err:
        raise ConfigError(f"bundle: {err}; no embedded object to adjust") from None
    embedded = json.loads(body)
    embedded["contract"] = {**embedded["contract"], "config_cache_ttl_seconds": seconds}
    return f"{head}{json.dumps(embedded)}{tail}"


def _binding(bundle: EdgeBundle, name: str, type_: str, target: str, relay_key_b64: str) -> PlanBinding:
    # Mirrors components.tenant_edge._binding: kv/d1 point at the tenant's own stores, the one
    # secret_text is the relay key, plain_text carries its literal text.
    if type_ in ("kv_namespace", "d1"):
        return PlanBinding(name=name, type=type_)
    if type_ == "secret_text":
        if target != "relay_key":
            raise ConfigError(f"tenant {bundle.tenant}: binding {name}: secret_text target {target!r} is not relay_key")
        return PlanBinding(name=name, type="secret_text", value=relay_key_b64)
    return PlanBinding(name=name, type="plain_text", value=target)


def tenant_plan(
    bundle: EdgeBundle,
    *,
    relay_key_b64: str,
    kv_values: Mapping[str, str],
    config_ttl_seconds: int | None = None,
    egress: tuple[str, ...] = (),
) -> TenantPlan:
    """One tenant's runtime entry; `kv_values` must hold exactly the bundle's KV entries."""
    wanted = {entry.key for entry in bundle.kv_entries}
    if set(kv_values) != wanted:
        missing = sorted(wanted - set(kv_values))
        extra = sorted(set(kv_values) - wanted)
        raise ConfigError(
            f"tenant {bundle.tenant}: KV values do not match the bundle (missing {missing}, extra {extra})"
        )
    modules = tuple(
        PlanModule(
            name=m.name,
            content=(
                with_config_ttl(m.content, config_ttl_seconds)
                if config_ttl_seconds is not None and m.name == bundle.main_module
                else m.content
            ),
        )
        for m in bundle.modules
    )
    return TenantPlan(
        tenant=bundle.tenant,
        worker=bundle.script_name,
        compatibility_date=bundle.compatibility_date,
        compatibility_flags=bundle.compatibility_flags,
        main_module=bundle.main_module,
        modules=modules,
        bindings=tuple(_binding(bundle, b.name, b.type, b.target, relay_key_b64) for b in bundle.bindings),
        kv_namespace=bundle.kv_title,
        d1_database=bundle.d1_name,
        routes=local_routes(bundle),
        kv=dict(kv_values),
        migrations=tuple(_migration(m) for m in bundle.migrations),
        hostnames=bundle.hostnames,
        bundle_hash=bundle.bundle_hash,
        config_version=bundle.config_version,
        egress=egress,
    )


def _migration(migration: Migration) -> PlanMigration:
    return PlanMigration(name=migration.name, sql=migration.sql)


def check_distinct(plans: list[TenantPlan]) -> None:
    """Refuse two tenants sharing a store or a route: one runtime, so a clash would mix their data."""
    seen: dict[tuple[str, str], str] = {}
    for plan in plans:
        for kind, value in (
            ("worker name", plan.worker),
            ("KV namespace", plan.kv_namespace),
            ("D1 database", plan.d1_database),
            *(("route", r) for r in plan.routes),
        ):
            owner = seen.setdefault((kind, value), plan.tenant)
            if owner != plan.tenant:
                raise ConfigError(f"tenant {plan.tenant}: {kind} {value!r} is also used by tenant {owner}")


def runtime_plan(
    plans: list[TenantPlan],
    *,
    host: str,
    port: int,
    kv_persist: Path,
    d1_persist: Path,
    ready_file: Path,
    token: str,
    contract: dict[str, Any],
    config_ttl_seconds: int | None = None,
    dispatch: DispatchPlan | None = None,
) -> RuntimePlan:
    check_distinct(plans)
    return RuntimePlan(
        host=host,
        port=port,
        kv_persist=str(kv_persist),
        d1_persist=str(d1_persist),
        ready_file=str(ready_file),
        control_token=token,
        config_ttl_seconds=(
            int(contract["config_cache_ttl_seconds"]) if config_ttl_seconds is None else config_ttl_seconds
        ),
        contract=contract,
        tenants=tuple(plans),
        dispatch=dispatch,
    )


LOCAL_ROUTES_KV = "clawdbot-local-routes"


def dispatch_plan(bundles: list[EdgeBundle], settings: dict[str, Any], compatibility_date: str) -> DispatchPlan:
    """The dispatcher's side of the runtime: the routing entries the tenant stacks would write."""
    seen: dict[str, str] = {}
    entries: list[PlanKvEntry] = []
    for bundle in bundles:
        if bundle.isolation != "dispatch":
            raise ConfigError(f"tenant {bundle.tenant}: a workers-mode bundle in a dispatch-mode local edge")
        for entry in bundle.routing:
            owner = seen.setdefault(entry.key, bundle.tenant)
            if owner != bundle.tenant:
                raise ConfigError(
                    f"tenant {bundle.tenant}: routing key {entry.key!r} is also written by tenant {owner}"
                )
            entries.append(PlanKvEntry(key=entry.key, value=entry.value, metadata=entry.metadata))
    return DispatchPlan(
        settings=settings, compatibility_date=compatibility_date, routes_kv=LOCAL_ROUTES_KV, routing=tuple(entries)
    )
