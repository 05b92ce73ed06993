"""The fleet CLI through click's CliRunner: selection, exit codes, JSON and table output, audit."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.audit import read_events
from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.drift import DriftFinding, DriftReport
from orchestrator.errors import StackError
from orchestrator.fleet import Rendered, SimulatedExecutor
from orchestrator.health import GateResult, HealthCheck, HealthTarget
from orchestrator.settings import Settings

TENANTS = ("acme", "beta", "gamma")


def ok_gate(targets: Sequence[HealthTarget]) -> GateResult:
    return GateResult(tuple(HealthCheck(t, "ok", "ok") for t in targets))


class Env:
    def __init__(self, tmp_path: Path) -> None:
        project = tmp_path / "project"
        project.mkdir()
        (project / "Pulumi.yaml").write_text("name: clawdbot\n")
        (project / "Pulumi.prod.yaml").write_text("config: {}\n")
        for tenant in TENANTS:
            (project / f"Pulumi.prod.{tenant}.yaml").write_text(f"config: {{id: {tenant}}}\n")
        passphrase = tmp_path / "passphrase"
        passphrase.write_text("pass phrase")
        passphrase.chmod(0o600)
        self.settings = Settings(
            project_dir=project,
            state_dir=tmp_path / "state",
            work_root=tmp_path / "work",
            passphrase_file=passphrase,
            audit_log=tmp_path / "audit.jsonl",
            pulumi_root=tmp_path / "no-pulumi-here",
        )
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


@pytest.mark.parametrize("command", ["preview", "up", "refresh", "destroy", "drift", "status", "recover"])
def test_every_command_has_help(env: Env, command: str) -> None:
    result = env.invoke(command, "--help")
    assert result.exit_code == 0 and "--tenant ID" in result.output


def test_selection_is_required(env: Env) -> None:
    result = env.invoke("up")
    assert result.exit_code == 2 and "choose the tenants: --tenant ID (repeatable) or --all" in result.output
    assert env.invoke("up", "--all", "--tenant", "acme").exit_code == 2


def test_unknown_tenant_is_a_usage_error(env: Env) -> None:
    result = env.invoke("up", "--tenant", "ghost")
    assert result.exit_code == 2 and "unknown tenant 'ghost' (registered: acme, beta, gamma)" in result.output


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
    from orchestrator.locks import fleet_lease

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
