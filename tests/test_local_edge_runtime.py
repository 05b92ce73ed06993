"""The local edge in real workerd (Miniflare): parity with TenantEdge, isolation, faults and recovery."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config.stack_file import set_value
from orchestrator.core import crypto
from orchestrator.core.contract import REPO_ROOT, config_kv_key, contract, health_path
from orchestrator.core.errors import ConfigError
from orchestrator.local_edge import LocalEdge, prepare_tenants, probe_local, push_config, tenant_request
from orchestrator.local_edge import process as proc
from orchestrator.local_edge.errors import LocalEdgeError
from orchestrator.local_edge.keys import relay_key_b64
from orchestrator.local_edge.runtime import RuntimeInfo, TenantInfo
from orchestrator.offline.session import run_offline
from orchestrator.ops.scratch import ScratchProject, copy_examples, synthetic_tenant, write_passphrase_file

pytestmark = pytest.mark.slow

SCRIPT = "cloudflare:index/workersScript:WorkersScript"
KV = "cloudflare:index/workersKv:WorkersKv"
MIGRATIONS = "pulumi-python:dynamic:Resource"
HOOK = contract()["webhook"]
N_ISOLATED = 20


def webhook(info: TenantInfo, edge: LocalEdge, secret: str, event_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    raw = json.dumps(body).encode()
    headers = {HOOK["id_header"]: event_id, HOOK["signature_header"]: crypto.webhook_signature(secret, raw)}
    response = tenant_request(edge.edge_client(), info, "POST", HOOK["path"], body=raw, headers=headers)
    return response.status, response.json()


def root_doc(edge: LocalEdge, info: TenantInfo) -> Any:
    return tenant_request(edge.edge_client(), info, "GET", "/").json()


def root_doc_after_ttl(edge: LocalEdge, info: TenantInfo) -> Any:
    """`GET /` once the TTL (1 s in these fixtures) has passed and the Worker has re-read KV.

    Past its TTL the Worker answers traffic from the config it holds and re-reads KV behind the
    response (stale-while-revalidate, docs/contract.md); a health request waits for that re-read, so
    one health request first makes the next `GET /` show what KV holds now, deterministically.
    """
    time.sleep(1.2)
    assert tenant_request(edge.edge_client(), info, "GET", health_path()).status == 200
    return root_doc(edge, info)


# --- parity: one bundle, two targets ----------------------------------------------------------


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScratchProject, LocalEdge, RuntimeInfo]]:
    root = tmp_path_factory.mktemp("examples")
    project = copy_examples(REPO_ROOT, root / "project", write_passphrase_file(root / "passphrase"))
    edge = LocalEdge(root / "state")
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=root / "passphrase")
    info = edge.up(prepared, port=0)
    yield project, edge, info
    edge.down()


@pytest.mark.parametrize("tenant", ["acme", "globex"])
def test_local_edge_binds_what_tenant_edge_registers(
    examples: tuple[ScratchProject, LocalEdge, RuntimeInfo], tenant: str
) -> None:
    project, edge, info = examples
    local = info.tenant(tenant)
    run = run_offline(project.root, f"prod.{tenant}", secret_values=project.secrets[tenant])
    (script,) = run.of_type(SCRIPT)
    deployed = script.inputs

    assert {(b["name"], b["type"]) for b in deployed["bindings"]} == {(b.name, b.type) for b in local.bindings}
    assert local.worker == deployed["scriptName"]
    assert local.main_module == deployed["mainModule"]
    assert local.compatibility_date == deployed["compatibilityDate"]
    deployed_modules = {deployed["mainModule"]: hashlib.sha256(deployed["content"].encode()).hexdigest()}
    assert "files" not in deployed  # one linked module, the same bytes on both targets
    assert {m.name: m.sha256 for m in local.modules} == deployed_modules

    kv_resources = {r.inputs["keyName"]: r.inputs["value"] for r in run.of_type(KV)}
    assert sorted(kv_resources) == local.kv_keys == sorted(edge.control().kv_keys(tenant))

    # Same payload signed, same plaintexts sealed: each under its own target's relay key.
    offline_key = crypto.relay_key_from_b64(next(b["text"] for b in deployed["bindings"] if b["type"] == "secret_text"))
    local_key = crypto.relay_key_from_b64(relay_key_b64(edge.layout, tenant, 1))
    control = edge.control()
    local_config = control.kv_get(tenant, config_kv_key())
    assert local_config is not None
    assert crypto.verify_config(local_key, tenant, local_config) == crypto.verify_config(
        offline_key, tenant, kv_resources[config_kv_key()]
    )
    for key, value in kv_resources.items():
        if key == config_kv_key():
            continue
        name = key.removeprefix(contract()["kv_keys"]["secret_prefix"])
        local_value = control.kv_get(tenant, key)
        assert local_value is not None
        assert (
            crypto.open_secret(local_key, tenant, name, local_value)
            == crypto.open_secret(offline_key, tenant, name, value)
            == project.secrets[tenant][name]
        )

    (migrations,) = [r for r in run.of_type(MIGRATIONS) if "migrations" in r.inputs]
    wanted = [m["name"] for m in migrations.inputs["migrations"]]
    applied = [r["name"] for r in control.query(tenant, "SELECT name FROM d1_migrations ORDER BY id")]
    assert applied == wanted == local.migrations.applied

    patterns = [r.inputs["pattern"] for r in run.resources if r.type.endswith("WorkersRoute")]
    domains = [r.inputs["hostname"] for r in run.resources if r.type.endswith("WorkersCustomDomain")]
    # Registration order is the engine's; the set of routes is what both targets must agree on.
    assert sorted(local.routes) == sorted([*patterns, *(f"{d}/*" for d in domains)])


def test_examples_serve_healthy_and_route_by_path(examples: tuple[ScratchProject, LocalEdge, RuntimeInfo]) -> None:
    _, edge, info = examples
    client = edge.edge_client()
    for tenant in info.tenants:
        check = probe_local(client, tenant)
        assert check.verdict == "ok", check.reason
    # globex's apex route only covers /hooks/*: the apex's other paths are not the tenant's.
    assert client.request("globex.example.net", "GET", "/").status == 404
    assert client.request("www.globex.example.net", "GET", "/").json()["tenant"] == "globex"


Running = tuple[ScratchProject, LocalEdge, RuntimeInfo]


def test_signed_webhook_is_stored_and_forged_one_refused(examples: Running) -> None:
    project, edge, info = examples
    acme = info.tenant("acme")
    secret = project.secrets["acme"]["WEBHOOK_SECRET"]
    assert webhook(acme, edge, secret, "evt-parity", {"total": 1}) == (200, {"stored": True, "duplicate": False})
    assert webhook(acme, edge, secret, "evt-parity", {"total": 1}) == (200, {"stored": False, "duplicate": True})
    assert webhook(acme, edge, "forged", "evt-forged", {"total": 2})[0] == 401
    rows = edge.control().query("acme", "SELECT webhook_id FROM webhook_events ORDER BY webhook_id")
    assert [r["webhook_id"] for r in rows] == ["evt-parity"]


def test_control_query_refuses_a_write_disguised_as_a_query(
    examples: tuple[ScratchProject, LocalEdge, RuntimeInfo],
) -> None:
    _, edge, _ = examples
    control = edge.control()
    before = control.query("acme", "SELECT name FROM d1_migrations ORDER BY name")
    assert before
    for sql in ("WITH x AS (SELECT 1) DELETE FROM d1_migrations RETURNING name", "SELECT 1; DELETE FROM d1_migrations"):
        with pytest.raises(LocalEdgeError, match="HTTP 400: only one read-only SELECT statement is allowed"):
            control.query("acme", sql)
    assert control.query("acme", "SELECT name FROM d1_migrations ORDER BY name") == before


def test_runtime_log_never_holds_a_secret(examples: tuple[ScratchProject, LocalEdge, RuntimeInfo]) -> None:
    project, edge, info = examples
    log = edge.layout.log_file.read_text()
    assert "ready:" in log
    for tenant in info.tenants:
        assert relay_key_b64(edge.layout, tenant.tenant, 1) not in log
        for value in project.secrets[tenant.tenant].values():
            assert value not in log
    assert edge.layout.control_token.read_text().strip() not in log
    for path in (edge.layout.control_token, *edge.layout.keys_dir.iterdir(), edge.layout.log_file):
        assert path.stat().st_mode & 0o077 == 0, path


def test_second_up_is_refused_while_running(examples: tuple[ScratchProject, LocalEdge, RuntimeInfo]) -> None:
    project, edge, info = examples
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=project.root.parent / "passphrase")
    with pytest.raises(LocalEdgeError, match="already running"):
        edge.up(prepared, port=0)
    assert edge.status().state == "running" and edge.running().pid == info.pid


# --- 20 tenants, isolated ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScratchProject, LocalEdge, RuntimeInfo]]:
    root = tmp_path_factory.mktemp("fleet")
    project = ScratchProject(root / "project", write_passphrase_file(root / "passphrase"), source=REPO_ROOT)
    for index in range(N_ISOLATED):
        project.add_tenant(synthetic_tenant(index))
    edge = LocalEdge(root / "state")
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=root / "passphrase")
    info = edge.up(prepared, port=0, config_ttl_seconds=1)
    yield project, edge, info
    edge.down()


def test_each_tenant_has_its_own_stores(fleet: tuple[ScratchProject, LocalEdge, RuntimeInfo]) -> None:
    _, _, info = fleet
    assert len(info.tenants) == N_ISOLATED
    assert len({t.kv_namespace for t in info.tenants}) == N_ISOLATED
    assert len({t.d1_database for t in info.tenants}) == N_ISOLATED
    for tenant in info.tenants:
        targets = {b.type: b.target for b in tenant.bindings}
        assert targets["kv_namespace"] == tenant.kv_namespace and targets["d1"] == tenant.d1_database


def test_tenants_are_isolated(fleet: tuple[ScratchProject, LocalEdge, RuntimeInfo]) -> None:
    project, edge, info = fleet
    a, b = info.tenants[0], info.tenants[1]
    # The same event id at two tenants: each D1 stores its own, neither sees a duplicate.
    for tenant in (a, b):
        secret = project.secrets[tenant.tenant]["WEBHOOK_SECRET"]
        assert webhook(tenant, edge, secret, "evt-shared", {"for": tenant.tenant}) == (
            200,
            {"stored": True, "duplicate": False},
        )
    for tenant in (a, b):
        rows = edge.control().query(tenant.tenant, "SELECT body FROM webhook_events")
        assert [json.loads(r["body"]) for r in rows] == [{"for": tenant.tenant}]
    # A's secret does not sign for B: B verifies with the secret sealed in B's own KV.
    assert webhook(b, edge, project.secrets[a.tenant]["WEBHOOK_SECRET"], "evt-cross", {})[0] == 401
    # A config document valid for A, planted in B's KV, is refused by B (B keeps its own).
    control = edge.control()
    a_doc = control.kv_get(a.tenant, config_kv_key())
    assert a_doc is not None
    control.kv_put(b.tenant, config_kv_key(), a_doc)
    time.sleep(1.2)
    served = root_doc(edge, b)
    assert served["tenant"] == b.tenant and served["greeting"] == f"hello from {b.tenant}"
    assert probe_local(edge.edge_client(), b).verdict == "degraded"
    # Every tenant answers for itself on its own hostnames.
    client = edge.edge_client()
    for tenant in info.tenants[2:]:
        for host in tenant.hostnames:
            assert client.request(host, "GET", "/").json()["tenant"] == tenant.tenant


def test_unknown_host_gets_404(fleet: tuple[ScratchProject, LocalEdge, RuntimeInfo]) -> None:
    _, edge, _ = fleet
    client = edge.edge_client()
    for host in ("unknown.example.com", "t000.example.test", "127.0.0.1", "shop.t000.example.test.evil.com"):
        response = client.request(host, "GET", "/_edge/health")
        assert response.status == 404 and response.json() == {"error": "no_tenant_for_host"}, host


def test_control_worker_refuses_a_wrong_token(fleet: tuple[ScratchProject, LocalEdge, RuntimeInfo]) -> None:
    _, edge, info = fleet
    response = edge.edge_client().request(
        "control.local",
        "GET",
        f"/kv/keys?tenant={info.tenants[0].tenant}",
        headers={"MF-Route-Override": info.control_worker, "Authorization": "Bearer " + "0" * 64},
    )
    assert response.status == 401


# --- faults -----------------------------------------------------------------------------------


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[tuple[ScratchProject, LocalEdge, RuntimeInfo]]:
    project = ScratchProject(tmp_path / "project", write_passphrase_file(tmp_path / "passphrase"), source=REPO_ROOT)
    project.add_tenant(synthetic_tenant(1))
    project.add_tenant(synthetic_tenant(2))
    edge = LocalEdge(tmp_path / "state")
    info = edge.up(
        prepare_tenants(project.root, edge.layout, passphrase_file=tmp_path / "passphrase"),
        port=0,
        config_ttl_seconds=1,
    )
    yield project, edge, info
    edge.down()


@pytest.mark.parametrize("fault", ["cleared", "corrupted"])
def test_kv_fault_serves_last_known_good_and_reports_degraded(
    faulty: tuple[ScratchProject, LocalEdge, RuntimeInfo], fault: str
) -> None:
    project, edge, info = faulty
    tenant, neighbour = info.tenants
    set_value(project.root / f"Pulumi.prod.{tenant.tenant}.yaml", "clawdbot:tenant.config", {"greeting": "v2"})
    set_value(project.root / f"Pulumi.prod.{tenant.tenant}.yaml", "clawdbot:tenant.config_version", 2)
    push_config(edge, project.root, tenant.tenant)
    assert root_doc_after_ttl(edge, tenant)["greeting"] == "v2"
    control = edge.control()
    for key in control.kv_keys(tenant.tenant):
        if fault == "cleared":
            control.kv_delete(tenant.tenant, key)
        else:
            control.kv_put(tenant.tenant, key, '{"v":1,"payload":"tampered"')
    served = root_doc_after_ttl(edge, tenant)
    assert (served["config_version"], served["config_source"], served["greeting"]) == (2, "cache", "v2")
    check = probe_local(edge.edge_client(), tenant)
    assert check.verdict == "degraded" and check.doc is not None and check.doc.config.source == "cache"
    assert probe_local(edge.edge_client(), neighbour).verdict == "ok"  # only the faulty tenant is affected


@pytest.mark.parametrize("fault", ["cleared", "corrupted"])
def test_push_config_repairs_a_damaged_document_at_the_same_version(
    faulty: tuple[ScratchProject, LocalEdge, RuntimeInfo], fault: str
) -> None:
    project, edge, info = faulty
    tenant = info.tenants[0]
    control = edge.control()
    if fault == "cleared":
        control.kv_delete(tenant.tenant, config_kv_key())
    else:
        control.kv_put(tenant.tenant, config_kv_key(), '{"v":1,"payload":"tampered"')
    time.sleep(1.2)
    assert probe_local(edge.edge_client(), tenant).verdict == "degraded"
    # The stack file is unchanged: same config, same version as the running Worker.
    result = push_config(edge, project.root, tenant.tenant)
    assert (result.changed, result.previous_version, result.version) == (True, None, tenant.config_version)
    served = root_doc_after_ttl(edge, tenant)
    assert (served["config_version"], served["config_source"]) == (tenant.config_version, "kv")
    assert probe_local(edge.edge_client(), tenant).verdict == "ok"
    again = push_config(edge, project.root, tenant.tenant)
    assert (again.changed, again.previous_version) == (False, tenant.config_version)


def test_push_config_never_writes_below_what_the_worker_served(
    faulty: tuple[ScratchProject, LocalEdge, RuntimeInfo],
) -> None:
    project, edge, info = faulty
    tenant = info.tenants[0]
    stack_path = project.root / f"Pulumi.prod.{tenant.tenant}.yaml"
    set_value(stack_path, "clawdbot:tenant.config", {"greeting": "v3"})
    set_value(stack_path, "clawdbot:tenant.config_version", 3)
    push_config(edge, project.root, tenant.tenant)
    assert root_doc_after_ttl(edge, tenant)["config_version"] == 3  # served, so recorded in D1
    edge.control().kv_put(tenant.tenant, config_kv_key(), "not a document")
    set_value(stack_path, "clawdbot:tenant.config_version", 2)
    with pytest.raises(ConfigError, match="has already served version 3; the Worker never goes backwards"):
        push_config(edge, project.root, tenant.tenant)


def test_push_config_judges_same_content_as_the_worker_does(
    faulty: tuple[ScratchProject, LocalEdge, RuntimeInfo],
) -> None:
    # `true` is not `1` to the Worker's sameJson (worker_src/src/configdoc.js), though Python's == says so:
    # "unchanged" would leave the Worker serving 1 while the file says true. 1.0 is 1 to both.
    project, edge, info = faulty
    tenant = info.tenants[0]
    stack_path = project.root / f"Pulumi.prod.{tenant.tenant}.yaml"
    set_value(stack_path, "clawdbot:tenant.config", {"flag": 1})
    set_value(stack_path, "clawdbot:tenant.config_version", 3)
    assert push_config(edge, project.root, tenant.tenant).changed
    set_value(stack_path, "clawdbot:tenant.config", {"flag": 1.0})
    assert not push_config(edge, project.root, tenant.tenant).changed
    set_value(stack_path, "clawdbot:tenant.config", {"flag": True})
    with pytest.raises(ConfigError, match="already holds version 3 with different content"):
        push_config(edge, project.root, tenant.tenant)


def test_killed_runtime_is_reported_and_up_recovers_with_data(
    faulty: tuple[ScratchProject, LocalEdge, RuntimeInfo],
) -> None:
    project, edge, info = faulty
    tenant = info.tenants[0]
    secret = project.secrets[tenant.tenant]["WEBHOOK_SECRET"]
    assert webhook(tenant, edge, secret, "evt-before-crash", {"n": 1})[0] == 200
    set_value(project.root / f"Pulumi.prod.{tenant.tenant}.yaml", "clawdbot:tenant.config_version", 5)
    push_config(edge, project.root, tenant.tenant)

    (workerd,) = proc.workerd_pids(info.pid)
    os.kill(workerd, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while edge.status().state == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    status = edge.status()
    assert status.state == "dead" and "does not answer" in status.reason

    fresh = LocalEdge(edge.layout.root)  # a new CLI invocation
    prepared = prepare_tenants(project.root, fresh.layout, passphrase_file=project.root.parent / "passphrase")
    recovered = fresh.up(prepared, port=0, config_ttl_seconds=1)
    assert recovered.pid != info.pid and not proc.group_members(info.pid)
    assert recovered.tenant(tenant.tenant).migrations.skipped == tenant.migrations.applied
    rows = fresh.control().query(tenant.tenant, "SELECT webhook_id FROM webhook_events")
    assert [r["webhook_id"] for r in rows] == ["evt-before-crash"]
    assert webhook(tenant, fresh, secret, "evt-before-crash", {"n": 1}) == (200, {"stored": False, "duplicate": True})
    # The relay key survived the crash: the pushed v5 still verifies and is served.
    assert root_doc(fresh, tenant)["config_version"] == 5
    fresh.down()


def test_killed_runner_leaves_no_orphan_after_up(faulty: tuple[ScratchProject, LocalEdge, RuntimeInfo]) -> None:
    project, edge, info = faulty
    os.kill(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while edge.status().state == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    status = edge.status()
    assert status.state == "dead" and f"runner process {info.pid} is gone" in status.reason
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=project.root.parent / "passphrase")
    recovered = edge.up(prepared, port=0)
    assert not proc.group_members(info.pid)  # the orphaned workerd was stopped
    assert edge.status().state == "running" and recovered.pid != info.pid
