"""A scratch project of simulated tenants for driving the fleet CLI through CliRunner."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestrator.config.settings import Settings
from orchestrator.core.health import GateResult, HealthCheck, HealthTarget


def ok_gate(targets: Sequence[HealthTarget]) -> GateResult:
    return GateResult(tuple(HealthCheck(t, "ok", "ok") for t in targets))


def fleet_project(tmp_path: Path, tenants: Sequence[str]) -> Settings:
    """Pulumi.yaml, a platform stack and one stack file per tenant; the settings of a home in tmp_path."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: clawdbot\n")
    (project / "Pulumi.prod.yaml").write_text("config: {}\n")
    for tenant in tenants:
        (project / f"Pulumi.prod.{tenant}.yaml").write_text(f"config: {{id: {tenant}}}\n")
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("pass phrase")
    passphrase.chmod(0o600)
    return Settings(
        project_dir=project,
        state_dir=tmp_path / "state",
        work_root=tmp_path / "work",
        passphrase_file=passphrase,
        audit_log=tmp_path / "audit.jsonl",
        pulumi_root=tmp_path / "no-pulumi-here",
    )
