"""The fleet CLI through click's CliRunner: selection, exit codes, JSON and table output, audit."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fleet_project import fleet_project, ok_gate

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.config.settings import Settings
from orchestrator.core.drift import DriftFinding, DriftReport
from orchestrator.core.errors import StackError
from orchestrator.fleet.audit import read_events
from orchestrator.fleet.changes import Rendered
from orchestrator.fleet.ports import StackExecutor
from orchestrator.testing.simulated import SimulatedExecutor

TENANTS = ("acme", "beta", "gamma")


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = fleet_project(tmp_path, TENANTS)
        self.sim = SimulatedExecutor(health_base="http://127.0.0.1:1")
        self.urls: list[str | None] = []

        def executor(settings: Settings, url: str | None) -> SimulatedExecutor:
            self.urls.append(url)
            return self.sim

        self.deps = FleetDeps(
            executor=executor,
            gate=ok_gate,
            render=lambda p: lambda s: Rendered(f"sim-{s}", 1),
            settings=lambda: self.settings,
        )

    def invoke(self, *args: str, real: bool = False) -> Result:
        deps = FleetDeps(settings=lambda: self.settings) if real else self.deps
        return CliRunner().invoke(cli, list(args), obj=deps)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


@pytest.mark.parametrize("command", ["preview", "up", "refresh", "destroy", "drift", "status", "recover", "outputs"])
def test_every_command_has_help(env: Env, command: str) -> None:
    result = env.invoke(command, "--help")
    assert result.exit_code == 0 and "--tenant ID" in result.output


def test_selection_is_required(env: Env) -> None:
    result = env.invoke("up")
    assert result.exit_code == 2 and "choose the tenants: --tenant ID (repeatable) or --all" in result.output
    assert env.invoke("up", "--all", "--tenant", "acme").exit_code == 2


def test_unknown_tenant_is_a_usage_error(env: Env) -> None:
    result = env.invoke("up", "--tenant", "ghost")
    assert result.exit_code == 2 and "unknown tenant 'ghost': no stack file Pulumi.prod.ghost.yaml" in result.output
    assert "(registered: acme, beta, gamma)" in result.output


def test_bad_numbers_are_usage_errors(env: Env) -> None:
    assert env.invoke("up", "--all", "--concurrency", "0").exit_code == 2
    assert env.invoke("up", "--all", "--canary", "nope").exit_code == 2


def test_missing_pulumi_cli_says_how_to_install_it(env: Env) -> None:
    result = env.invoke("up", "--all", real=True)
    assert result.exit_code == 1
    assert result.output.startswith("Error: Pulumi CLI not found")
    assert "curl -fsSL https://get.pulumi.com | sh -s -- --version 3.272.0" in result.output


def test_up_all_json_report_and_audit(env: Env) -> None:
    result = env.invoke("up", "--all", "--json", "--wave-size", "2")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["counts"] == {"ok": 3} and report["waves"] == 2
    assert [t["tenant"] for t in report["tenants"]] == list(TENANTS)
    assert env.urls[0] is not None and env.urls[0].startswith("http://127.0.0.1:")  # the throttle proxy
    events = read_events(env.settings.audit_log)
    assert {e.tenant for e in events if e.operation == "up" and e.stack != "fleet"} == set(TENANTS)

    again = json.loads(env.invoke("up", "--all", "--json").stdout)
    assert again["counts"] == {"unchanged": 3}


def test_failed_tenant_exits_1_with_a_table(env: Env) -> None:
    env.sim.failures["prod.beta"] = [StackError("stack prod.beta (tenant beta): pulumi up failed: quota")]
    result = env.invoke("up", "--tenant", "acme", "--tenant", "beta", "--canary", "acme")
    assert result.exit_code == 1
    assert "beta" in result.stdout and "failed" in result.stdout and "quota" in result.stdout
    assert "halted: wave 1 failed: beta" in result.stdout


def test_preview_expect_no_changes_exits_1_on_drift(env: Env) -> None:
    finding = DriftFinding("urn::acme-worker", "t", "update", ("content",))
    env.sim.drift["prod.acme"] = DriftReport((finding,))
    result = env.invoke("preview", "--all", "--expect-no-changes", "--json")
    assert result.exit_code == 1
    results = {t["tenant"]: t["result"] for t in json.loads(result.stdout)["tenants"]}
    assert results == {"acme": "drifted", "beta": "no-drift", "gamma": "no-drift"}
    assert env.invoke("preview", "--all").exit_code == 0


def test_drift_command_is_a_preview_only_refresh(env: Env) -> None:
    result = env.invoke("drift", "--tenant", "acme", "--json")
    assert result.exit_code == 0
    assert ("prod.acme", "refresh") in env.sim.calls
    assert "WorkersScript.startupTimeMs" in env.invoke("drift", "--help").output


def test_destroy_needs_confirmation(env: Env) -> None:
    result = env.invoke("destroy", "--tenant", "acme")
    assert result.exit_code == 2 and "--yes" in result.output
    assert env.sim.calls == []
    assert env.invoke("destroy", "--tenant", "acme", "--yes").exit_code == 0


def test_status_table_and_json(env: Env) -> None:
    assert env.invoke("status", "--json").exit_code == 1  # never deployed: not all good
    env.invoke("up", "--tenant", "acme")
    result = env.invoke("status", "--tenant", "acme", "--json", "--no-health")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["tenants"][0]
    assert row["tenant"] == "acme" and row["bundle_hash"] == "sim-prod.acme" and row["last_update"]
    table = env.invoke("status", "--no-health").stdout
    assert "acme" in table and "sim-prod.acm" in table and "never" in table


def test_another_run_holding_the_lease_is_an_error(env: Env) -> None:
    from orchestrator.engine.locks import fleet_lease

    with fleet_lease(env.settings.work_root / "fleet.lock", holder="ops@vps", command="up --all"):
        result = env.invoke("up", "--all")
    assert result.exit_code == 1 and "another fleet run holds" in result.output and "ops@vps" in result.output


def write_lock(env: Env, tenant: str, pid: int, host: str) -> Path:
    directory = env.settings.state_dir / ".pulumi" / "locks" / "organization" / "clawdbot" / f"prod.{tenant}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "x.json"
    path.write_text(json.dumps({"pid": pid, "username": "ops", "hostname": host, "timestamp": "2025-01-01T00:00:00Z"}))
    return path


def test_recover_clears_dead_locks_and_explains_live_ones(env: Env) -> None:
    dead = write_lock(env, "acme", 2**22 + 12345, socket.gethostname())
    foreign = write_lock(env, "beta", 1, "other-host")
    result = env.invoke("recover", "--tenant", "acme")
    assert result.exit_code == 0 and "cleared stale lock" in result.output and not dead.exists()
    result = env.invoke("recover", "--tenant", "beta")
    assert result.exit_code == 1 and "another host" in result.output and foreign.exists()


def test_locked_stack_fails_that_tenant_with_advice(env: Env) -> None:
    write_lock(env, "beta", os.getpid(), socket.gethostname())  # a live holder: us
    result = env.invoke("refresh", "--all", "--json")
    assert result.exit_code == 1
    beta = next(t for t in json.loads(result.stdout)["tenants"] if t["tenant"] == "beta")
    assert beta["result"] == "failed" and "still running" in beta["detail"]
    assert ("prod.beta", "refresh") not in env.sim.calls


ZONE = "3f1c9d2e8b7a6c5d4e3f2a1b0c9d8e7f"


def test_tenants_add_list_show_remove(env: Env) -> None:
    args = [
        "tenants",
        "add",
        "delta",
        "--zone-id",
        ZONE,
        "--zone-name",
        "delta.example.com",
        "--route",
        "shop.delta.example.com/*",
    ]
    result = env.invoke(*args)
    assert result.exit_code == 0, result.output
    path = env.settings.project_dir / "Pulumi.prod.delta.yaml"
    assert path.exists() and "shop.delta.example.com/*" in path.read_text()
    assert env.invoke(*args).exit_code == 1  # already registered

    listed = json.loads(env.invoke("tenants", "list", "--json").stdout)
    assert [t["tenant"] for t in listed] == ["acme", "beta", "delta", "gamma"]
    shown = json.loads(env.invoke("tenants", "show", "delta").stdout)
    assert shown["tenant"] == "delta" and shown["deployed"] is None

    assert env.invoke("tenants", "remove", "delta").exit_code == 2  # needs --yes
    assert env.invoke("tenants", "remove", "delta", "--yes").exit_code == 0
    assert not path.exists()
    assert {e.operation for e in read_events(env.settings.audit_log)} >= {"tenant-add", "tenant-remove"}


def test_tenants_add_rejects_invalid_config_naming_the_field(env: Env) -> None:
    result = env.invoke(
        "tenants", "add", "eps", "--zone-id", ZONE, "--zone-name", "eps.example.com", "--route", "shop.other.com/*"
    )
    assert result.exit_code == 1 and "clawdbot:tenant.routes[0]" in result.output
    assert not (env.settings.project_dir / "Pulumi.prod.eps.yaml").exists()


def test_tenants_remove_refuses_while_resources_exist(env: Env) -> None:
    state = env.settings.state_dir / ".pulumi" / "stacks" / "clawdbot" / "prod.acme.json"
    state.parent.mkdir(parents=True)
    resources = [{"type": "pulumi:pulumi:Stack"}, {"type": "cloudflare:index/workersScript:WorkersScript"}]
    state.write_text(json.dumps({"checkpoint": {"latest": {"resources": resources}}}))
    result = env.invoke("tenants", "remove", "acme", "--yes")
    assert result.exit_code == 1 and "destroy --tenant acme --yes" in result.output
    assert (env.settings.project_dir / "Pulumi.prod.acme.yaml").exists()


def write_pending(env: Env, tenant: str) -> None:
    state = env.settings.state_dir / ".pulumi" / "stacks" / "clawdbot" / f"prod.{tenant}.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    urn = f"urn:pulumi:prod.{tenant}::clawdbot::cloudflare:index/workersKvNamespace:WorkersKvNamespace::{tenant}-kv"
    pending = [
        {"resource": {"urn": urn, "type": "cloudflare:index/workersKvNamespace:WorkersKvNamespace"}, "type": "creating"}
    ]
    state.write_text(json.dumps({"checkpoint": {"latest": {"resources": [], "pending_operations": pending}}}))


def test_pending_operations_block_up_and_are_reported(env: Env) -> None:
    write_pending(env, "beta")
    result = env.invoke("up", "--all", "--json", "--continue-on-error", "--canary", "acme")
    assert result.exit_code == 1
    beta = next(t for t in json.loads(result.stdout)["tenants"] if t["tenant"] == "beta")
    assert beta["result"] == "failed" and "pending" in beta["detail"]
    assert any("refresh --tenant beta --clear-pending-creates" in a for a in beta["advice"])
    assert ("prod.beta", "up") not in env.sim.calls
    events = [e for e in read_events(env.settings.audit_log) if e.operation == "preflight"]
    assert [(e.tenant, e.result) for e in events] == [("beta", "blocked")]

    # The advice is how to get out: a refresh that clears them runs, and still reports them.
    refresh = env.invoke("refresh", "--tenant", "beta", "--clear-pending-creates", "--json")
    assert refresh.exit_code == 0, refresh.output
    (row,) = json.loads(refresh.stdout)["tenants"]
    assert row["result"] == "ok" and row["advice"]
    table = env.invoke("preview", "--tenant", "beta").stdout
    assert "beta:" in table and "clear-pending-creates" in table


D1_TYPE = "cloudflare:index/d1Database:D1Database"


def write_resources(env: Env, tenant: str, resources: list[dict[str, object]]) -> None:
    state = env.settings.state_dir / ".pulumi" / "stacks" / "clawdbot" / f"prod.{tenant}.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"checkpoint": {"latest": {"resources": resources}}}))


def test_tenants_remove_after_destroy_kept_the_d1_explains_instead_of_looping(env: Env) -> None:
    urn = f"urn:pulumi:prod.acme::clawdbot::{D1_TYPE}::acme-db"
    write_resources(
        env,
        "acme",
        [
            {"urn": "urn:pulumi:prod.acme::clawdbot::pulumi:pulumi:Stack::s", "type": "pulumi:pulumi:Stack"},
            {"urn": "urn:p::prov", "type": "pulumi:providers:cloudflare", "custom": True},
            {"urn": "urn:p::edge", "type": "clawdbot:edge:TenantEdge", "custom": False},
            {"urn": urn, "type": D1_TYPE, "custom": True, "protect": True},
        ],
    )
    result = env.invoke("tenants", "remove", "acme", "--yes")
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "protected D1 database acme-db" in text and "destroy keeps on purpose" in text
    assert "pulumi state unprotect --stack prod.acme --yes" in text
    assert "pulumi stack rm --stack prod.acme --force --yes" in text
    assert "run `python -m orchestrator destroy --tenant acme --yes` first" not in text

    write_resources(env, "acme", [])  # after `pulumi stack rm` or a deliberate delete
    assert env.invoke("tenants", "remove", "acme", "--yes").exit_code == 0


def test_destroy_prints_what_it_kept_and_how_to_remove_it(env: Env) -> None:
    from orchestrator.fleet.ports import KeptResource

    env.sim.kept["prod.acme"] = (KeptResource(f"urn:pulumi:prod.acme::clawdbot::{D1_TYPE}::acme-db", D1_TYPE),)
    result = env.invoke("destroy", "--tenant", "acme", "--yes")
    assert result.exit_code == 0
    assert "kept protected D1 database acme-db" in result.stdout and "deliberately" in result.stdout


def test_outputs_command_prints_masked_outputs(env: Env) -> None:
    result = env.invoke("outputs", "--tenant", "acme", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["tenant"] == "acme" and doc["outputs"]["bundle_hash"] == "sim-prod.acme"
    assert env.invoke("outputs", "--tenant", "ghost").exit_code == 2
    missing = env.invoke("outputs", "--tenant", "acme", real=True)
    assert missing.exit_code == 1 and "Pulumi CLI not found" in missing.output


def test_budget_key_and_policy_config_reach_the_run(env: Env, tmp_path: Path) -> None:
    seen: list[Settings] = []
    base = env.deps.executor

    def capture(settings: Settings, url: str | None) -> StackExecutor:
        seen.append(settings)
        return base(settings, url)

    env.deps.executor = capture
    config = tmp_path / "policy.json"
    config.write_text("{}")
    result = env.invoke("up", "--all", "--api-budget-key", "token", "--policy-config", str(config))
    assert result.exit_code == 0, result.output
    assert (seen[0].api_budget_key, seen[0].policy_config) == ("token", config)
    assert env.sim.prepared == 1, "plugins are installed once per run, before any stack"
    preview = env.invoke("preview", "--all")
    assert preview.exit_code == 0, preview.output
    assert (seen[1].api_budget_key, seen[1].policy_config) == ("fleet", None)
    assert env.invoke("up", "--all", "--api-budget-key", "user").exit_code == 2


def test_help_says_the_budget_is_per_user_and_the_pack_always_runs(env: Env) -> None:
    up_help = " ".join(env.invoke("up", "--help").output.split())
    assert "1,200 requests / 5 min per user, across all of that user's API tokens" in up_help
    assert "--policy-config" in up_help and "CLAWDBOT_POLICY_PACK_DIR" in up_help
    assert "--policy-config" not in env.invoke("refresh", "--help").output
