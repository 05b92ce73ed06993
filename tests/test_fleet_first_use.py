"""The executor is built and prepared only when a stack is about to run.

A run that finds nothing to do (`up` over unchanged tenants) must not check the Pulumi CLI, import
the Automation API or install plugins; a run that does run stacks builds and prepares once, before
the first stack, and a setup error there stops the run with its `fleet` audit record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fleet_project import fleet_project, ok_gate

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.config.settings import Settings
from orchestrator.core.errors import PulumiCliMissingError
from orchestrator.fleet.audit import read_events
from orchestrator.fleet.changes import Rendered
from orchestrator.fleet.ports import Operation, StackExecutor
from orchestrator.ops.fleet_run import BuiltOnFirstUse
from orchestrator.testing.simulated import SimulatedExecutor

TENANTS = ("acme", "beta")


class Project:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = fleet_project(tmp_path, TENANTS)
        self.sim = SimulatedExecutor(health_base="http://127.0.0.1:1")
        self.built = 0
        self.fail_build: Exception | None = None

    def executor(self, settings: Settings, url: str | None) -> StackExecutor:
        self.built += 1
        if self.fail_build is not None:
            raise self.fail_build
        return self.sim

    def up(self, *args: str) -> dict[str, object]:
        deps = FleetDeps(
            executor=self.executor,
            gate=ok_gate,
            render=lambda p: lambda s: Rendered(f"sim-{s}", 1),
            settings=lambda: self.settings,
        )
        result = CliRunner().invoke(cli, ["up", "--all", "--json", *args], obj=deps)
        if result.exit_code != 0 and not result.stdout.startswith("{"):
            return {"exit_code": result.exit_code, "error": result.output}
        document: dict[str, object] = json.loads(result.stdout)
        document["exit_code"] = result.exit_code
        return document


def test_an_up_with_nothing_to_do_never_builds_or_prepares_the_executor(tmp_path: Path) -> None:
    project = Project(tmp_path)
    first = project.up()
    assert first["counts"] == {"ok": 2} and (project.built, project.sim.prepared) == (1, 1)
    again = project.up()
    assert again["counts"] == {"unchanged": 2} and again["exit_code"] == 0
    assert (project.built, project.sim.prepared) == (1, 1), "nothing ran: no executor, no plugin install"
    forced = project.up("--force")
    assert forced["counts"] == {"ok": 2} and (project.built, project.sim.prepared) == (2, 2)


def test_a_run_with_nothing_to_do_succeeds_without_the_pulumi_cli(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.up()
    project.fail_build = PulumiCliMissingError("Pulumi CLI not found (`pulumi` on PATH): install it")
    assert project.up()["counts"] == {"unchanged": 2}
    (project.settings.project_dir / "Pulumi.prod.beta.yaml").write_text("config: {id: beta, v: 2}\n")
    failed = project.up()
    assert failed["exit_code"] == 1 and "Pulumi CLI not found" in str(failed["error"])
    runs = [(e.operation, e.result) for e in read_events(project.settings.audit_log) if e.stack == "fleet"]
    assert runs[-2:] == [("up", "started"), ("up", "failed")], "the failed run is closed in the audit log"


@pytest.mark.parametrize("operation", [Operation.PREVIEW, Operation.REFRESH, Operation.DESTROY])
def test_other_operations_prepare_before_the_first_stack(tmp_path: Path, operation: Operation) -> None:
    project = Project(tmp_path)
    deps = FleetDeps(executor=project.executor, gate=ok_gate, settings=lambda: project.settings)
    args = [operation.value, "--all", "--json"] + (["--yes"] if operation is Operation.DESTROY else [])
    result = CliRunner().invoke(cli, args, obj=deps)
    assert result.exit_code == 0, result.output
    assert (project.built, project.sim.prepared) == (1, 1)
    assert project.sim.calls and all(op == operation.value for _, op in project.sim.calls)


def test_built_on_first_use_builds_once_whatever_is_called_first() -> None:
    sim = SimulatedExecutor()
    builds: list[int] = []

    def build() -> StackExecutor:
        builds.append(1)
        return sim

    lazy = BuiltOnFirstUse(build)
    assert builds == []
    assert lazy.outputs("prod.acme")["bundle_hash"] == "sim-prod.acme"
    lazy.prepare()
    lazy.rollback("prod.acme", 4)
    assert builds == [1] and sim.prepared == 1 and sim.calls == [("prod.acme", "rollback")]
    assert sim.rollback_versions == {"prod.acme": 4}  # the version to re-issue under is passed through
