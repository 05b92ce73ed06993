"""The program in dispatch mode (Workers for Platforms) under the provider stand-in: the platform's
namespace and Workers, a tenant as a user Worker with routing entries, and what stays as in workers mode."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from tenant_fixtures import CANARY, ZONE, ZONE_ID, stack_config, tenant

from orchestrator.config.tenant_config import load_platform_spec
from orchestrator.core import outputs
from orchestrator.core.contract import REPO_ROOT, contract
from orchestrator.core.errors import ConfigError
from orchestrator.core.model import TenantSpec
from orchestrator.core.render import render_bundle
from orchestrator.core.resource_types import (
    CRON,
    CUSTOM_DOMAIN,
    CUSTOM_HOSTNAME,
    DISPATCH_NAMESPACE,
    DYNAMIC,
    FALLBACK_ORIGIN,
    KV,
    KV_NAMESPACE,
    ROUTE,
    SCRIPT,
)
from orchestrator.offline.cloudflare_mock import FakeAccount
from orchestrator.offline.errors import ProviderRejected
from orchestrator.offline.session import OfflineRun, OfflineSession, run_offline

SAAS_ZONE_ID = "ffeeddccbbaa99887766554433221100"
SAAS_ZONE = "edge-platform.example.net"
D = contract()["dispatch"]


def dispatch_project(tmp_path: Path, **platform: Any) -> Path:
    """A copy of the project whose platform stack says `isolation: dispatch`."""
    shutil.copy(REPO_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    document = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["clawdbot:platform"] |= {
        "isolation": "dispatch",
        "plans": {"standard": {"cpu_ms": 50, "subrequests": 50}, "free": {"cpu_ms": 10, "subrequests": 5}},
        "saas_zone": {"id": SAAS_ZONE_ID, "name": SAAS_ZONE},
        "fallback_origin": f"fallback.{SAAS_ZONE}",
        **platform,
    }
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document))
    return tmp_path


def fresh_account() -> FakeAccount:
    return FakeAccount(zones={ZONE_ID: ZONE, SAAS_ZONE_ID: SAAS_ZONE})


def deploy(project: Path, spec: dict[str, Any] | None = None) -> tuple[OfflineRun, OfflineRun, FakeAccount]:
    fake = fresh_account()
    platform = run_offline(project, "prod", account=fake)
    tenant_run = OfflineSession(project, "prod.acme", config=stack_config(spec), account=fake).run()
    return platform, tenant_run, fake


def test_platform_holds_the_protected_namespace_the_dispatcher_the_outbound_worker_and_the_saas_route(
    tmp_path: Path,
) -> None:
    platform, _, _ = deploy(dispatch_project(tmp_path))
    (namespace,) = platform.of_type(DISPATCH_NAMESPACE)
    assert namespace.protect and namespace.inputs["name"] == "clawdbot-prod"
    scripts = {s.inputs["scriptName"]: s for s in platform.of_type(SCRIPT)}
    assert set(scripts) == {"clawdbot-prod--dispatch", "clawdbot-prod--outbound"}
    dispatcher = scripts["clawdbot-prod--dispatch"]
    assert dispatcher.inputs["mainModule"] == "dispatcher.js"
    bindings = {b["name"]: b for b in dispatcher.inputs["bindings"]}
    ns_binding = bindings[D["bindings"]["namespace"]]
    assert ns_binding["type"] == "dispatch_namespace" and ns_binding["namespace"] == "clawdbot-prod"
    assert ns_binding["outbound"] == {"worker": {"service": "clawdbot-prod--outbound"}, "params": ["tenant", "egress"]}
    (routes,) = platform.of_type(KV_NAMESPACE)
    assert routes.inputs["title"] == "clawdbot-prod--routes"
    assert bindings[D["bindings"]["routes"]]["namespaceId"] == platform.outputs[outputs.ROUTING_KV_ID]
    settings = next(f for n, f in dispatcher.inputs["files"].items() if n == "settings.js")
    assert settings["contentType"] == "application/javascript+module"
    assert scripts["clawdbot-prod--outbound"].inputs["mainModule"] == "outbound.js"
    (cron,) = platform.of_type(CRON)
    assert cron.inputs["schedules"] == [{"cron": "* * * * *"}]
    (route,) = platform.of_type(ROUTE)
    assert (route.inputs["pattern"], route.inputs["zoneId"]) == ("*/*", SAAS_ZONE_ID)
    (fallback,) = platform.of_type(FALLBACK_ORIGIN)
    assert fallback.inputs["origin"] == f"fallback.{SAAS_ZONE}"


def test_dispatch_settings_carry_the_plans_and_the_tenant_script_prefix(tmp_path: Path) -> None:
    platform, _, _ = deploy(dispatch_project(tmp_path))
    dispatcher = next(s for s in platform.of_type(SCRIPT) if s.inputs["mainModule"] == "dispatcher.js")
    text = base64.b64decode(dispatcher.inputs["files"]["settings.js"]["contentBase64"]).decode()
    settings = json.loads(text.removeprefix("export const SETTINGS = ").rstrip().removesuffix(";"))
    assert settings["plans"] == {
        "standard": {"cpu_ms": 50, "subrequests": 50},
        "free": {"cpu_ms": 10, "subrequests": 5},
    }
    assert settings["script_prefix"] == "clawdbot-prod-" and settings["contract"] == contract()


def test_tenant_is_a_user_worker_with_routing_entries_and_no_account_worker(tmp_path: Path) -> None:
    platform, run, fake = deploy(dispatch_project(tmp_path), tenant(egress=["api.stripe.com"], plan="free"))
    assert (
        not run.of_type(SCRIPT) and not run.of_type(ROUTE) and not run.of_type(CUSTOM_DOMAIN) and not run.of_type(CRON)
    )
    (user,) = [r for r in run.of_type(DYNAMIC) if "script_name" in r.inputs]
    assert (user.inputs["namespace"], user.inputs["script_name"]) == ("clawdbot-prod", "clawdbot-prod-acme")
    assert user.inputs["tags"] == ["tenant-acme", "plan-free", "env-prod", "fleet-clawdbot-prod"]
    assert "relay_key" in user.secret_paths and "relay_key" in user.additional_secret_outputs
    kinds = {b["name"]: b for b in user.inputs["bindings"]}
    assert kinds["EDGE_ISOLATION"] == {"type": "plain_text", "name": "EDGE_ISOLATION", "text": "dispatch"}
    assert "RELAY_KEY" not in kinds, "the relay key goes through the secrets API, never the upload"
    assert ("clawdbot-prod", "clawdbot-prod-acme") in fake.namespace_scripts

    entries = {r.inputs["keyName"]: r for r in run.of_type(KV) if r.name.startswith("acme-routing-")}
    assert set(entries) == {"host:edge.acme.example.com", "host:shop.acme.example.com", "cron:acme"}
    routing_kv = platform.outputs[outputs.ROUTING_KV_ID]
    assert all(e.inputs["namespaceId"] == routing_kv for e in entries.values())
    route = json.loads(entries["host:shop.acme.example.com"].inputs["value"])
    assert route == {
        "v": 1,
        "tenant": "acme",
        "script": "clawdbot-prod-acme",
        "plan": "free",
        "limits": None,
        "egress": ["api.stripe.com"],
    }
    assert json.loads(entries["cron:acme"].inputs["metadata"]) == {"crons": ["*/15 * * * *"]}
    assert all(user.urn in e.dependencies for e in entries.values()), "routed only once the script is there"
    hostnames = sorted(h.inputs["hostname"] for h in run.of_type(CUSTOM_HOSTNAME))
    assert hostnames == ["edge.acme.example.com", "shop.acme.example.com"]
    assert all(h.inputs["zoneId"] == SAAS_ZONE_ID for h in run.of_type(CUSTOM_HOSTNAME))


def test_kv_d1_secrets_and_migrations_are_the_same_as_in_workers_mode(tmp_path: Path) -> None:
    _, dispatch_run, _ = deploy(dispatch_project(tmp_path))
    workers_run = OfflineSession(REPO_ROOT, "prod.acme", config=stack_config(), account=fresh_account()).run()

    def shape(run: OfflineRun) -> list[tuple[str, str]]:
        keep = [r for r in run.resources if not r.name.startswith("acme-routing-")]
        return sorted(
            (r.type, r.name) for r in keep if r.type not in (SCRIPT, ROUTE, CUSTOM_DOMAIN, CRON, CUSTOM_HOSTNAME)
        )

    user_worker = (DYNAMIC, "acme-user-worker")
    assert shape(dispatch_run) == sorted([*shape(workers_run), user_worker])
    visible = json.dumps([r.inputs for r in dispatch_run.resources], default=str)
    assert CANARY not in visible


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"routes": ["shop.acme.example.com/api/*"]},
            r"clawdbot:tenant\.routes\[0\]: 'shop\.acme\.example\.com/api/\*': dispatch mode routes whole hostnames",
        ),
        ({"plan": "gold"}, r"clawdbot:tenant\.plan: 'gold' is not a platform plan \(free, standard\)"),
        ({"egress": ["*"]}, r"clawdbot:tenant\.egress\[0\]"),
    ],
)
def test_what_dispatch_mode_cannot_serve_fails_before_anything_is_registered(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    project = dispatch_project(tmp_path)
    fake = fresh_account()
    run_offline(project, "prod", account=fake)
    session = OfflineSession(project, "prod.acme", config=stack_config(tenant(**overrides)), account=fake)
    with pytest.raises(ConfigError, match=f"^stack prod.acme: {message}"):
        session.run()
    assert session.monitor.registered == []


def test_platform_plans_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"clawdbot:platform\.default_plan: 'gold' is not one of plans"):
        load_platform_spec(dispatch_project(tmp_path, default_plan="gold"))
    with pytest.raises(ConfigError, match=r"clawdbot:platform\.isolation"):
        load_platform_spec(dispatch_project(tmp_path, isolation="trusted"))


def test_workers_mode_bundles_ignore_the_dispatch_only_fields() -> None:
    platform = load_platform_spec(REPO_ROOT)
    plain = render_bundle(TenantSpec.model_validate(tenant()), platform)
    with_extras = render_bundle(TenantSpec.model_validate(tenant(egress=["api.stripe.com"], plan="standard")), platform)
    assert plain.bundle_hash == with_extras.bundle_hash and plain.isolation == "workers" and plain.routing == ()


def test_a_tenant_before_its_platform_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ProviderRejected, match=r"deploy the platform stack \(prod\) in dispatch mode first"):
        OfflineSession(dispatch_project(tmp_path), "prod.acme", config=stack_config(), account=fresh_account()).run()


def test_moving_one_tenant_keeps_its_kv_and_d1_and_never_leaves_its_hostnames_unserved(tmp_path: Path) -> None:
    """docs/dispatch-mode.md, "Moving a tenant": pinned → staged (both paths serve) → moved."""
    project = dispatch_project(tmp_path)
    fake = fresh_account()
    run_offline(project, "prod", account=fake)

    def stage(**overrides: Any) -> OfflineRun:
        return OfflineSession(project, "prod.acme", config=stack_config(tenant(**overrides)), account=fake).run()

    pinned, staged, moved = stage(isolation="workers"), stage(keep_account_worker=True), stage()
    stores = {KV_NAMESPACE, "cloudflare:index/d1Database:D1Database"}

    def kept(run: OfflineRun) -> list[tuple[str, str, str]]:
        return sorted((r.type, r.name, r.id or "") for r in run.resources if r.type in stores)

    assert kept(pinned) == kept(staged) == kept(moved), "same names, same ids: KV and D1 are kept"
    assert [s.inputs["scriptName"] for s in pinned.of_type(SCRIPT)] == ["clawdbot-prod-acme"]
    assert not [r for r in pinned.of_type(DYNAMIC) if "script_name" in r.inputs]
    # Staged: the account Worker still holds its routes and domains while the user Worker is routed.
    (account_worker,) = staged.of_type(SCRIPT)
    assert "EDGE_ISOLATION" not in {b["name"] for b in account_worker.inputs["bindings"]}, "cron path stays closed"
    assert staged.of_type(ROUTE) and staged.of_type(CUSTOM_DOMAIN)
    assert [r.name for r in staged.of_type(DYNAMIC) if "script_name" in r.inputs] == ["acme-user-worker"]
    assert {r.inputs["keyName"] for r in staged.of_type(KV) if r.name.startswith("acme-routing-")}
    # Moved: only the user Worker is left.
    assert not moved.of_type(SCRIPT) and not moved.of_type(ROUTE)


def test_a_tenant_cannot_ask_for_dispatch_mode_the_platform_does_not_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"clawdbot:tenant\.isolation: dispatch needs the platform stack"):
        OfflineSession(REPO_ROOT, "prod.acme", config=stack_config(tenant(isolation="dispatch"))).run()
    with pytest.raises(ConfigError, match=r"clawdbot:tenant\.keep_account_worker: only means something"):
        OfflineSession(REPO_ROOT, "prod.acme", config=stack_config(tenant(keep_account_worker=True))).run()
