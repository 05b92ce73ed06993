"""`status` names each tenant's isolation mode, and `status`/`health` judge both modes alike.

The local edge's side (`health --local` through the dispatcher) is in tests/test_local_edge_dispatch.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from tenant_fixtures import tenant
from test_program_dispatch import dispatch_project, fresh_account

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec
from orchestrator.core.contract import REPO_ROOT, contract, health_path
from orchestrator.core.dispatch import routing_entries
from orchestrator.core.health import GateResult, HealthCheck, HealthTarget
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet.ports import DeployedRecord
from orchestrator.fleet.status import fleet_status
from orchestrator.offline.session import run_offline
from orchestrator.ops.health import remote_targets
from orchestrator.ops.status import isolation_reader, status_rows
from orchestrator.server.schemas import StatusRow, TenantView

BETA = {"id": "1" * 32, "name": "beta.example.com"}


def write_tenant(root: Path, spec: dict[str, Any]) -> None:
    spec = {**spec, "secret_names": []}
    (root / f"Pulumi.prod.{spec['id']}.yaml").write_text(yaml.safe_dump({"config": {"clawdbot:tenant": spec}}))


def project(tmp_path: Path, isolation: str) -> Path:
    root = tmp_path / "project"
    root.mkdir(parents=True)
    if isolation == "dispatch":
        dispatch_project(root)
    else:
        (root / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text())
        (root / "Pulumi.prod.yaml").write_text((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    write_tenant(root, tenant())
    pinned = {"isolation": "workers"} if isolation == "dispatch" else {}
    write_tenant(root, tenant(id="beta", zone=BETA, routes=["www.beta.example.com/*"], custom_domains=[], **pinned))
    (root / "Pulumi.prod.broken.yaml").write_text("config:\n  clawdbot:tenant: {id: broken, zone: 3}\n")
    return root


def settings_for(tmp_path: Path, root: Path) -> Settings:
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("pass phrase")
    passphrase.chmod(0o600)
    return Settings(
        project_dir=root,
        state_dir=tmp_path / "state",
        work_root=tmp_path / "work",
        passphrase_file=passphrase,
        audit_log=tmp_path / "audit.jsonl",
    )


def test_isolation_is_what_the_file_and_the_platform_ask(tmp_path: Path) -> None:
    dispatch = isolation_reader(project(tmp_path / "d", "dispatch"))
    assert [dispatch(s) for s in ("prod.acme", "prod.beta", "prod.broken", "prod.ghost")] == [
        "dispatch",
        "workers",  # pinned while the others moved
        None,
        None,
    ]
    workers = isolation_reader(project(tmp_path / "w", "workers"))
    assert [workers(s) for s in ("prod.acme", "prod.beta")] == ["workers", "workers"]
    broken = project(tmp_path / "b", "dispatch")
    (broken / "Pulumi.prod.yaml").write_text("config: {clawdbot:platform: {isolation: sideways}}\n")
    assert isolation_reader(broken)("prod.acme") is None


def test_fleet_status_carries_it_without_changing_the_verdict() -> None:
    class Store:
        def get(self, stack: str) -> None:
            return None

        def drift(self, stack: str) -> None:
            return None

    status = fleet_status(Store(), ["prod.a", "prod.b"], None, {"prod.a": "dispatch"}.get)  # type: ignore[arg-type]
    assert [(t.tenant, t.isolation, t.ok) for t in status.tenants] == [("a", "dispatch", False), ("b", None, False)]
    assert status.as_dict()["tenants"][0]["isolation"] == "dispatch"


def _record(stack: str, url: str) -> DeployedRecord:
    return DeployedRecord.model_validate(
        {"stack": stack, "bundle_hash": "b" * 64, "config_version": 2, "health_url": url, "config_digest": "c",
         "program_digest": "p", "render_digest": "r", "state_fingerprint": None, "updated_at": "2026-12-01T10:00:00Z"}
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["dispatch", "workers"])
def test_status_json_and_table_name_the_mode_and_probe_alike(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, mode)
    settings = settings_for(tmp_path, root)
    store = FileDeployedStore(settings, "clawdbot")
    for stack in ("prod.acme", "prod.beta"):
        store.put(_record(stack, f"https://{stack}.test{health_path()}"))
    probed: list[HealthTarget] = []

    def gate(targets: Any, **_: Any) -> GateResult:
        probed.extend(targets)
        return GateResult(tuple(HealthCheck(t, "ok", "ok") for t in targets))

    monkeypatch.setattr("orchestrator.ops.status.health.gate", gate)
    deps = FleetDeps(settings=lambda: settings)
    result = CliRunner().invoke(cli, ["status", "--tenant", "acme", "--tenant", "beta", "--json"], obj=deps)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["tenants"]
    expected = {"dispatch": ["dispatch", "workers"], "workers": ["workers", "workers"]}[mode]
    assert [(r["tenant"], r["isolation"], r["health"]) for r in rows] == [
        ("acme", expected[0], "ok"),
        ("beta", expected[1], "ok"),
    ]
    # The same probe of the same recorded URL in either mode: health does not depend on it.
    assert [t.url for t in probed] == [
        f"https://prod.acme.test{health_path()}",
        f"https://prod.beta.test{health_path()}",
    ]
    table = CliRunner().invoke(cli, ["status", "--tenant", "acme", "--no-health"], obj=deps)
    assert "isolation" in table.output and expected[0] in table.output
    # The control room serves the same rows.
    for row in status_rows(settings, ["prod.acme"], probe=False)[0]:
        assert StatusRow.model_validate(row).isolation == expected[0]
        assert TenantView.model_validate({"stack": "prod.acme", **row}).isolation == expected[0]


def test_the_remote_health_target_of_a_dispatch_tenant_is_a_host_the_dispatcher_routes_to_it(tmp_path: Path) -> None:
    root = project(tmp_path, "dispatch")
    settings = settings_for(tmp_path, root)
    (target,) = remote_targets(settings, ["acme"])
    platform = load_platform_spec(root)
    spec = load_tenant_spec(root, "prod.acme")
    prefix = contract()["dispatch"]["host_key_prefix"]
    routed = {e.key.removeprefix(prefix) for e in routing_entries(spec, platform) if e.key.startswith(prefix)}
    host = target.url.removeprefix("https://").removesuffix(health_path())
    assert host in routed and target.tenant == "acme"
    # ...and the URL the deployed stack exports, which the fleet's gate and `status` probe.
    account = fresh_account()
    run_offline(root, "prod", account=account)
    outputs = run_offline(root, "prod.acme", account=account).outputs
    assert outputs["health_url"] == target.url
