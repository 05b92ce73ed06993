"""Operations on a running local edge: push a config version, send requests, probe health."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config.tenant_config import select_tenant_stacks
from orchestrator.core import crypto
from orchestrator.core.config_match import same_payload
from orchestrator.core.contract import config_kv_key, health_path
from orchestrator.core.errors import ConfigError, CryptoError
from orchestrator.core.health import HealthCheck, HealthTarget, check_answer
from orchestrator.core.model import host_for
from orchestrator.core.names import tenant_stack
from orchestrator.local_edge.client import ROUTE_OVERRIDE_HEADER, ControlClient, EdgeClient, EdgeResponse
from orchestrator.local_edge.deploy import load_bundles
from orchestrator.local_edge.errors import LocalEdgeError
from orchestrator.local_edge.keys import relay_key_b64, relay_key_path
from orchestrator.local_edge.runtime import LocalEdge, TenantInfo


@dataclass(frozen=True)
class PushResult:
    tenant: str
    previous_version: int | None
    """Version of the valid config document KV held before (None: missing or not valid)."""
    version: int
    changed: bool
    ttl_seconds: int
    """The Worker re-reads KV at most this often: the new version is served within this time."""


def push_config(edge: LocalEdge, project_dir: Path, tenant: str) -> PushResult:
    """Sign the tenant's current config (from its stack file) into its local KV, without a restart.

    A new version must be higher than any the edge holds or has served. When the stored document
    is missing or damaged, the version already served may be written again: that is the repair.
    """
    (stack,) = select_tenant_stacks(project_dir, [tenant])  # not registered: refused before anything else
    runtime = edge.running()
    info = runtime.tenant(tenant)
    ((spec, bundle),) = load_bundles(project_dir, [stack])
    if not relay_key_path(edge.layout, tenant, spec.relay_key_generation).is_file():
        raise ConfigError(
            f"stack {stack}: relay_key_generation is now {spec.relay_key_generation}, a key the running Worker "
            "does not have; a new relay key needs a restart (`local down`, `local up`)"
        )
    relay_key = crypto.relay_key_from_b64(relay_key_b64(edge.layout, tenant, spec.relay_key_generation))
    control = edge.control()
    with edge.locked():
        current_text = control.kv_get(tenant, config_kv_key())
        previous: dict[str, Any] | None = None
        if current_text is not None:
            try:
                previous = crypto.verify_config(relay_key, tenant, current_text)
            except CryptoError:
                previous = None  # a damaged document is exactly what a push repairs
        ttl = runtime.config_ttl_seconds
        if previous is not None:
            if same_payload(json.loads(bundle.config_payload), previous):  # as the Worker's sameJson
                return PushResult(tenant, previous["version"], spec.config_version, False, ttl)
            floor = max(info.config_version, previous["version"], _accepted_floor(control, tenant))
            if spec.config_version <= floor:
                raise ConfigError(
                    f"stack {stack}: clawdbot:tenant.config_version is {spec.config_version} but the edge already "
                    f"holds version {floor} with different content; bump config_version (the Worker never goes "
                    "backwards and refuses a same-version change)"
                )
        else:
            # Missing or damaged (unreadable, bad MAC): nothing valid to compare with, so re-writing
            # the version the Worker already serves is the repair; only going backwards is refused.
            floor = max(info.config_version, _accepted_floor(control, tenant))
            if spec.config_version < floor:
                raise ConfigError(
                    f"stack {stack}: clawdbot:tenant.config_version is {spec.config_version} but the edge has "
                    f"already served version {floor}; the Worker never goes backwards, so set config_version "
                    f"to at least {floor} to repair its KV config"
                )
        control.kv_put(tenant, config_kv_key(), crypto.sign_config(relay_key, tenant, bundle.config_payload))
    return PushResult(tenant, previous["version"] if previous else None, spec.config_version, True, ttl)


def _accepted_floor(control: ControlClient, tenant: str) -> int:
    """The highest config version the tenant's Worker has accepted (its D1 record), or 0 if unknown.

    The Worker records each version it accepts and never serves an older one after it, so a push
    below this would be ignored; best effort, as the record is written off the response path.
    """
    try:
        rows = control.query(tenant, "SELECT MAX(version) AS v FROM applied_config_versions")
    except LocalEdgeError:
        return 0
    value = rows[0].get("v") if rows else None
    return value if isinstance(value, int) else 0


def tenant_request(
    client: EdgeClient,
    info: TenantInfo,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> EdgeResponse:
    """A request to a tenant by a hostname routed to `path` (without one, by its worker name)."""
    extra = dict(headers or {})
    host = host_for(info.routes, path)
    if host is not None:
        return client.request(host, method, path, body=body, headers=extra)
    # No concrete hostname reaches this path (wildcard or path-restricted routes only): address
    # the Worker by name, as a probe inside the Cloudflare dashboard would.
    extra[ROUTE_OVERRIDE_HEADER] = info.worker
    return client.request("unrouted.local", method, path, body=body, headers=extra)


def probe_local(client: EdgeClient, info: TenantInfo) -> HealthCheck:
    """One health probe of a local tenant, judged like a Cloudflare one."""
    host = host_for(info.routes, health_path()) or info.worker
    target = HealthTarget(
        stack=tenant_stack(info.tenant),
        tenant=info.tenant,
        url=f"http://{host}:{client.port}{health_path()}",
        bundle_hash=info.bundle_hash,
        config_version=info.config_version,
    )
    try:
        response = tenant_request(client, info, "GET", health_path())
    except LocalEdgeError as exc:
        return HealthCheck(target, "unreachable", str(exc))
    return check_answer(target, response.status, response.body)
