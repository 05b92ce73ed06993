"""The local edge in dispatch mode, in real workerd: the real dispatcher and outbound Worker in front
of the same bundles, parity with workers mode and with what NamespacedScript uploads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config.stack_file import set_value
from orchestrator.config.tenant_config import load_platform_spec
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import ConfigError
from orchestrator.core.model import Isolation, TenantSpec
from orchestrator.core.render import render_bundle
from orchestrator.local_edge import LocalEdge, prepare_tenants, probe_local, tenant_request
from orchestrator.local_edge.errors import LocalEdgeError
from orchestrator.local_edge.plan import dispatch_plan
from orchestrator.local_edge.runtime import RuntimeInfo
from orchestrator.offline.cloudflare_mock import FakeAccount
from orchestrator.offline.session import run_offline
from orchestrator.ops.scratch import ScratchProject, copy_examples, write_passphrase_file

pytestmark = pytest.mark.slow

Edge = tuple[ScratchProject, LocalEdge, RuntimeInfo]


def _bring_up(base: Path, isolation: Isolation) -> Edge:
    project = copy_examples(REPO_ROOT, base / "project", write_passphrase_file(base / "passphrase"), isolation)
    edge = LocalEdge(base / "state")
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=base / "passphrase")
    info = edge.up(prepared, port=0, platform=load_platform_spec(project.root))
    return project, edge, info


@pytest.fixture(scope="module")
def dispatch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    up = _bring_up(tmp_path_factory.mktemp("dispatch"), "dispatch")
    yield up
    up[1].down()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    up = _bring_up(tmp_path_factory.mktemp("workers"), "workers")
    yield up
    up[1].down()


def test_every_tenant_answers_through_the_dispatcher_and_is_healthy(dispatch: Edge) -> None:
    _, edge, info = dispatch
    assert info.isolation == "dispatch"
    for tenant in info.tenants:
        for host in tenant.hostnames:
            doc = edge.edge_client().request(host, "GET", "/").json()
            assert doc["tenant"] == tenant.tenant, host
    for tenant in info.tenants:
        check = probe_local(edge.edge_client(), tenant)
        assert check.ok, check.reason


def test_unknown_hosts_get_the_dispatchers_404(dispatch: Edge, workers: Edge) -> None:
    _, edge, _ = dispatch
    answer = edge.edge_client().request("nobody.example.org", "GET", "/")
    assert (answer.status, answer.json()) == (404, {"error": "unknown_host"})
    _, plain, _ = workers
    assert plain.edge_client().request("nobody.example.org", "GET", "/").json() == {"error": "no_tenant_for_host"}


def test_the_internal_cron_path_is_closed_from_outside(dispatch: Edge) -> None:
    _, edge, info = dispatch
    acme = info.tenant("acme")
    answer = tenant_request(edge.edge_client(), acme, "POST", "/_edge/cron", headers={"X-Edge-Cron": "* * * * *"})
    assert answer.status == 404


def test_the_same_bundle_answers_the_same_in_both_modes(dispatch: Edge, workers: Edge) -> None:
    for tenant in ("acme", "globex"):
        views = []
        for _, edge, info in (dispatch, workers):
            doc = tenant_request(edge.edge_client(), info.tenant(tenant), "GET", "/").json()
            views.append({k: doc[k] for k in ("tenant", "config_version", "config_source", "greeting")})
        assert views[0] == views[1], tenant


def test_the_user_worker_runs_exactly_what_namespaced_script_uploads(dispatch: Edge) -> None:
    project, _, info = dispatch
    fake = FakeAccount(zones={"3f1c9d2e8b7a6c5d4e3f2a1b0c9d8e7f": "acme.example.com"})
    run_offline(project.root, "prod", account=fake)
    run = run_offline(project.root, "prod.acme", account=fake, secret_values=project.secrets["acme"])
    (user,) = [r for r in run.resources if r.name == "acme-user-worker"]
    uploaded = {m["name"]: hashlib.sha256(m["content"].encode()).hexdigest() for m in user.inputs["modules"]}
    assert {m.name: m.sha256 for m in info.tenant("acme").modules} == uploaded
    local_bindings = {(b.name, b.type) for b in info.tenant("acme").bindings if b.type != "secret_text"}
    assert {(b["name"], b["type"]) for b in user.inputs["bindings"]} == local_bindings


def test_dispatch_mode_needs_the_platform_and_one_owner_per_hostname(tmp_path: Path) -> None:
    platform = load_platform_spec(REPO_ROOT).model_copy(update={"isolation": "dispatch"})
    spec = TenantSpec.model_validate(
        {"id": "acme", "zone": {"id": "0" * 32, "name": "acme.example.com"}, "routes": ["shop.acme.example.com/*"]}
    )
    twin = spec.model_copy(update={"id": "acme2"})
    with pytest.raises(
        ConfigError, match=r"routing key 'host:shop\.acme\.example\.com' is also written by tenant acme"
    ):
        dispatch_plan([render_bundle(spec, platform), render_bundle(twin, platform)], {}, "2026-04-01")
    workers_bundle = render_bundle(spec, load_platform_spec(REPO_ROOT))
    with pytest.raises(ConfigError, match="a workers-mode bundle in a dispatch-mode local edge"):
        dispatch_plan([workers_bundle], {}, "2026-04-01")
    project = copy_examples(REPO_ROOT, tmp_path / "p", write_passphrase_file(tmp_path / "pp"), "dispatch")
    edge = LocalEdge(tmp_path / "state")
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=tmp_path / "pp")
    with pytest.raises(LocalEdgeError, match="dispatch-mode tenants need the platform spec in dispatch mode"):
        edge.up(prepared, port=0)


def test_the_local_edge_refuses_what_up_would_refuse(tmp_path: Path) -> None:
    project = copy_examples(REPO_ROOT, tmp_path / "p", write_passphrase_file(tmp_path / "pp"), "dispatch")
    set_value(project.root / "Pulumi.prod.acme.yaml", "clawdbot:tenant.routes", ["shop.acme.example.com/api/*"])
    edge = LocalEdge(tmp_path / "state")
    with pytest.raises(ConfigError, match=r"stack prod\.acme: clawdbot:tenant\.routes\[0\]: .*whole hostnames"):
        prepare_tenants(project.root, edge.layout, passphrase_file=tmp_path / "pp")


def test_a_restart_without_a_tenant_leaves_it_no_route(tmp_path: Path) -> None:
    """The routing KV is rewritten at each start (by the control worker): a tenant no longer run answers 404."""
    project, edge, info = _bring_up(tmp_path, "dispatch")
    try:
        gone = info.tenant("globex").hostnames[0]
        assert edge.edge_client().request(gone, "GET", "/").json()["tenant"] == "globex"
    finally:
        edge.down()
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=tmp_path / "passphrase", tenants=["acme"])
    info = edge.up(prepared, port=0, platform=load_platform_spec(project.root))
    try:
        answer = edge.edge_client().request(gone, "GET", "/")
        assert (answer.status, answer.json()) == (404, {"error": "unknown_host"})
        kept = info.tenant("acme").hostnames[0]
        assert edge.edge_client().request(kept, "GET", "/").json()["tenant"] == "acme"
    finally:
        edge.down()


def test_the_health_command_reports_both_modes_alike(dispatch: Edge, workers: Edge) -> None:
    # `health --local` probes through the dispatcher in dispatch mode and the routes in workers mode:
    # the same tenants, verdicts, config versions and reasons, only the bundle hash differs (the
    # dispatch-mode bundle carries its isolation binding).
    answers = []
    for project, edge, _ in (dispatch, workers):
        env = {"CLAWDBOT_LOCAL_EDGE_DIR": str(edge.layout.root), "CLAWDBOT_PROJECT_DIR": str(project.root)}
        result = CliRunner().invoke(cli, ["health", "--local", "--json"], env=env)
        assert result.exit_code == 0, result.output
        document = json.loads(result.output)
        assert document["target"] == "local"
        answers.append(
            [(t["tenant"], t["verdict"], t["reason"], t["health"]["config"]["version"]) for t in document["tenants"]]
        )
    assert answers[0] == answers[1] and {a[1] for a in answers[0]} == {"ok"}
