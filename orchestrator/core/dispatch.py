"""Dispatch mode (Workers for Platforms), as plain data: names, tags, routing entries, the platform's Workers.

Pure like `render`: the tenant stack writes `routing_entries` into the platform's routing KV, the
platform stack deploys `dispatch_workers`, the local edge runs both. Formats: docs/contract.md
(dispatch mode); the Workers that read them: worker_src/src/dispatch/.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache

from orchestrator.core import contract as edge_contract
from orchestrator.core.contract import WORKER_SRC
from orchestrator.core.model import (
    FrozenModel,
    Isolation,
    PlatformSpec,
    TenantSpec,
    fleet_prefix,
    resource_prefix,
    route_host,
)

DISPATCH_SRC = WORKER_SRC / "src" / "dispatch"
DISPATCHER_MAIN = "dispatcher.js"
OUTBOUND_MAIN = "outbound.js"
SETTINGS_MODULE = "settings.js"
DISPATCHER_CRON = "* * * * *"
"""The dispatcher's one schedule: every minute it fans the tenants' own schedules out."""
MAX_TAGS = 8
"""Cloudflare's limit per namespace script (cf-docs workers-for-platforms/configuration/tags, platform/limits)."""
FORBIDDEN_TAG_CHARACTERS = (",", "&")
# `--` cannot occur in a tenant's name (ids start with a letter), so these never collide with one.
_PLATFORM_SUFFIXES = {"dispatcher": "dispatch", "outbound": "outbound", "routes": "routes"}


def platform_name(platform: PlatformSpec, role: str) -> str:
    """`clawdbot-<env>--dispatch|outbound|routes`: the platform's own scripts and routing KV title."""
    return f"{fleet_prefix(platform.environment)}--{_PLATFORM_SUFFIXES[role]}"


def namespace_name(platform: PlatformSpec) -> str:
    """One dispatch namespace per environment (renaming it replaces it, and with it every user Worker)."""
    return fleet_prefix(platform.environment)


def isolation_of(spec: TenantSpec, platform: PlatformSpec) -> Isolation:
    """The tenant's own choice, else the platform's."""
    return spec.isolation or platform.isolation


def plan_of(spec: TenantSpec, platform: PlatformSpec) -> str:
    return spec.plan or platform.default_plan


def script_tags(spec: TenantSpec, platform: PlatformSpec) -> tuple[str, ...]:
    """`tenant-<id>`, `plan-<tier>`, `env-<env>`, `fleet-<prefix>` (at most 8; offboarding sweeps by the first)."""
    return (
        f"tenant-{spec.id}",
        f"plan-{plan_of(spec, platform)}",
        f"env-{platform.environment}",
        f"fleet-{fleet_prefix(platform.environment)}",
    )


def tag_problem(tags: Sequence[str]) -> str | None:
    """Why Cloudflare would refuse these script tags, if it would."""
    if len(tags) > MAX_TAGS:
        return f"{len(tags)} script tags; Workers for Platforms allows {MAX_TAGS}"
    for tag in tags:
        if not tag or any(c in tag for c in FORBIDDEN_TAG_CHARACTERS):
            return f"script tag {tag!r} is empty or contains ',' or '&'"
    if len(set(tags)) != len(tags):
        return "script tags repeat"
    return None


def dispatch_problems(spec: TenantSpec, platform: PlatformSpec) -> list[tuple[str, str]]:
    """What a tenant says that the platform cannot serve: (key path under clawdbot:tenant, reason)."""
    problems: list[tuple[str, str]] = []
    if spec.plan is not None and spec.plan not in platform.plans:
        problems.append(("plan", f"{spec.plan!r} is not a platform plan ({', '.join(platform.plans)})"))
    if spec.isolation == "dispatch" and platform.isolation != "dispatch":
        problems.append(
            ("isolation", "dispatch needs the platform stack in dispatch mode (its namespace and dispatcher)")
        )
    if spec.keep_account_worker and isolation_of(spec, platform) != "dispatch":
        problems.append(("keep_account_worker", "only means something while moving to dispatch mode"))
    if isolation_of(spec, platform) != "dispatch":
        return problems
    for index, pattern in enumerate(spec.routes):
        host = route_host(pattern)
        if host.startswith("*") and not host.startswith("*."):
            problems.append(
                (f"routes[{index}]", f"{pattern!r}: dispatch mode needs '*.<host>/*' and '<host>/*' instead")
            )
        elif pattern != f"{host}/*":
            problems.append((f"routes[{index}]", f"{pattern!r}: dispatch mode routes whole hostnames; use '{host}/*'"))
    return problems


def whole_host_routes(routes: Sequence[str]) -> list[str]:
    """The routes a tenant needs for dispatch mode: each route's hostname, whole (the move procedure's step)."""
    return list(dict.fromkeys(f"{route_host(r)}/*" for r in routes))


class RoutingEntry(FrozenModel):
    key: str
    value: str
    metadata: str | None = None


def _route(spec: TenantSpec, platform: PlatformSpec) -> dict[str, object]:
    limits = spec.limits.model_dump(exclude_none=True) if spec.limits else None
    return {
        "v": 1,
        "tenant": spec.id,
        "script": resource_prefix(platform, spec.id),
        "plan": plan_of(spec, platform),
        "limits": limits or None,
        "egress": list(spec.egress),
    }


def routed_hosts(spec: TenantSpec) -> list[str]:
    """Every hostname the dispatcher routes to this tenant: concrete names, then wildcard route hosts."""
    hosts = [*spec.custom_domains, *(route_host(r) for r in spec.routes)]
    return list(dict.fromkeys(hosts))


def routing_entries(spec: TenantSpec, platform: PlatformSpec) -> tuple[RoutingEntry, ...]:
    """The tenant's keys in the routing KV: one per hostname, plus its cron entry when it has schedules."""
    d = edge_contract.contract()["dispatch"]
    route = _route(spec, platform)
    text = json.dumps(route, separators=(",", ":"))
    entries = [RoutingEntry(key=d["host_key_prefix"] + host, value=text) for host in routed_hosts(spec)]
    if spec.crons:
        cron = json.dumps({**route, "crons": list(spec.crons)}, separators=(",", ":"))
        meta = json.dumps({"crons": list(spec.crons)}, separators=(",", ":"))
        entries.append(RoutingEntry(key=d["cron_key_prefix"] + spec.id, value=cron, metadata=meta))
    return tuple(entries)


def dispatch_settings(platform: PlatformSpec) -> dict[str, object]:
    """What the dispatch and outbound Workers get as `settings.js` (see tools/dispatch.mjs renderSettings)."""
    return {
        "contract": edge_contract.contract(),
        "plans": {name: limits.model_dump() for name, limits in platform.plans.items()},
        "script_prefix": fleet_prefix(platform.environment) + "-",
    }


class DispatchModule(FrozenModel):
    name: str
    content: str


@cache
def _static_modules() -> tuple[DispatchModule, ...]:
    sources = sorted(DISPATCH_SRC.glob("*.js"))
    names = {p.name for p in sources}
    for needed in (DISPATCHER_MAIN, OUTBOUND_MAIN):
        if needed not in names:
            raise FileNotFoundError(f"{DISPATCH_SRC / needed}: a dispatch-mode Worker's main module is missing")
    if SETTINGS_MODULE in names:
        raise FileExistsError(f"{DISPATCH_SRC / SETTINGS_MODULE}: a rendered module in the source tree; delete it")
    return tuple(DispatchModule(name=p.name, content=p.read_text(encoding="utf-8")) for p in sources)


def dispatch_modules(platform: PlatformSpec) -> tuple[DispatchModule, ...]:
    """Every module of worker_src/src/dispatch/ plus the rendered settings; both platform Workers ship them all."""
    settings = json.dumps(dispatch_settings(platform), sort_keys=True, separators=(",", ":"))
    rendered = DispatchModule(name=SETTINGS_MODULE, content=f"export const SETTINGS = {settings};\n")
    return (*_static_modules(), rendered)
