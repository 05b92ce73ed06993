"""Fleet scheduling with the simulated executor: waves, canary, health gate, halting, rollback,
retries, concurrency, change detection, drift and the audit trail. No Pulumi CLI involved."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator.audit import AuditLog, read_events
from orchestrator.drift import DriftFinding, DriftReport
from orchestrator.errors import StackError, TransientStackError
from orchestrator.fleet import (
    Fleet,
    FleetInputs,
    Preflight,
    Rendered,
    Result,
    RolloutOptions,
    SimulatedExecutor,
    plan_waves,
)
from orchestrator.health import GateResult, HealthCheck, HealthTarget
from orchestrator.settings import Settings
from orchestrator.stacks import FileDeployedStore, Operation

UP = RolloutOptions(Operation.UP, concurrency=3, wave_size=3, retry_delay_s=0)


class Gate:
    """Health gate double: tenants listed in `sick` fail; records what it was asked."""

    def __init__(self, sick: Sequence[str] = ()) -> None:
        self.sick = set(sick)
        self.asked: list[list[HealthTarget]] = []

    def __call__(self, targets: Sequence[HealthTarget]) -> GateResult:
        self.asked.append(list(targets))
        return GateResult(
            tuple(
                HealthCheck(
                    t,
                    "degraded" if t.tenant in self.sick else "ok",
                    "status degraded" if t.tenant in self.sick else "ok",
                )
                for t in targets
            )
        )


class World:
    def __init__(self, tmp_path: Path, tenants: int = 7) -> None:
        self.project = tmp_path / "project"
        self.project.mkdir(parents=True)
        (self.project / "Pulumi.yaml").write_text("name: clawdbot\n")
        (self.project / "Pulumi.prod.yaml").write_text("config: {}\n")
        self.stacks = [f"prod.t{i:02d}" for i in range(tenants)]
        for stack in self.stacks:
            self.write(stack, "v1")
        self.settings = Settings(
            project_dir=self.project,
            state_dir=tmp_path / "state",
            work_root=tmp_path / "work",
            passphrase_file=tmp_path / "pp",
            audit_log=tmp_path / "audit.jsonl",
        )
        self.store = FileDeployedStore(self.settings, "clawdbot")
        self.inputs = FleetInputs(program_digest="p1", render_digest="r1")
        self.executor = SimulatedExecutor(health_base="http://127.0.0.1:1", sleep=lambda s: time.sleep(s))
        self.renders: list[str] = []
        self.bundle: dict[str, str] = {}
        self.gate = Gate()
        self.audit = AuditLog(self.settings.audit_log, who="test@host")

    def write(self, stack: str, content: str) -> None:
        (self.project / f"Pulumi.{stack}.yaml").write_text(f"config: {{v: {content}}}\n")

    def render(self, stack: str) -> Rendered:
        self.renders.append(stack)
        return Rendered(self.bundle.get(stack, f"sim-{stack}"), 1)

    def fleet(self, preflight: Preflight | None = None) -> Fleet:
        return Fleet(
            self.executor,
            self.store,
            desired=lambda s: self.inputs.desired(self.project, s),
            render=self.render,
            gate=self.gate,
            audit=self.audit,
            sleep=lambda s: None,
            preflight=preflight,
        )

    def ran(self) -> list[str]:
        return [stack for stack, op in self.executor.calls if op == "up"]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_plan_waves_puts_the_canary_alone_first() -> None:
    stacks = [f"s{i}" for i in range(8)]
    assert plan_waves(stacks, 3, None) == [["s0"], ["s1", "s2", "s3"], ["s4", "s5", "s6"], ["s7"]]
    assert plan_waves(stacks, 5, "s4") == [["s4"], ["s0", "s1", "s2", "s3", "s5"], ["s6", "s7"]]
    assert plan_waves(stacks, 5, "ghost")[0] == ["s0"]
    assert plan_waves([], 3, None) == []


def test_healthy_rollout_runs_every_wave_and_records_it(world: World) -> None:
    report = world.fleet().run(world.stacks, UP)
    assert report.ok and report.exit_code == 0 and report.waves == 3
    assert [r.wave for r in report.results] == [0, 1, 1, 1, 2, 2, 2]
    assert world.ran()[0] == "prod.t00"  # the canary went first, alone
    assert [len(a) for a in world.gate.asked] == [1, 3, 3]
    record = world.store.get("prod.t03")
    assert record is not None and record.bundle_hash == "sim-prod.t03" and record.config_digest
    assert world.store.last_good("prod.t03") == record
    events = read_events(world.settings.audit_log)
    ups = [e for e in events if e.operation == "up" and e.stack == "prod.t03"]
    assert ups[0].result == "ok" and ups[0].bundle_hash == "sim-prod.t03" and ups[0].who == "test@host"
    assert events[0].result == "started" and events[-1].result == "finished"


def test_second_run_skips_every_unchanged_tenant_without_the_engine(world: World) -> None:
    world.fleet().run(world.stacks, UP)
    world.executor.calls.clear()
    report = world.fleet().run(world.stacks, UP)
    assert report.ok and world.executor.calls == [] and world.renders == []
    assert {r.result for r in report.results} == {Result.UNCHANGED}


def test_only_the_changed_tenant_runs(world: World) -> None:
    world.fleet().run(world.stacks, UP)
    world.executor.calls.clear()
    world.write("prod.t04", "v2")
    report = world.fleet().run(world.stacks, UP)
    assert world.ran() == ["prod.t04"]
    changed = next(r for r in report.results if r.stack == "prod.t04")
    assert changed.result is Result.OK and changed.wave == 0


def test_program_change_redeploys_everyone(world: World) -> None:
    world.fleet().run(world.stacks, UP)
    world.executor.calls.clear()
    world.inputs = FleetInputs(program_digest="p2", render_digest="r1")
    world.fleet().run(world.stacks, UP)
    assert sorted(world.ran()) == world.stacks


def test_render_input_change_renders_but_deploys_only_real_bundle_changes(world: World) -> None:
    world.fleet().run(world.stacks, UP)
    world.executor.calls.clear()
    world.inputs = FleetInputs(program_digest="p1", render_digest="r2")
    world.bundle["prod.t02"] = "new-bundle"
    world.executor.bundles["prod.t02"] = "new-bundle"
    report = world.fleet().run(world.stacks, UP)
    assert sorted(world.renders) == world.stacks
    assert world.ran() == ["prod.t02"]
    assert next(r for r in report.results if r.stack == "prod.t01").detail == "unchanged (re-rendered: same bundle)"


def test_state_changed_outside_the_fleet_is_redeployed(world: World) -> None:
    world.fleet().run(world.stacks, UP)
    world.executor.calls.clear()
    state = world.settings.state_dir / ".pulumi" / "stacks" / "clawdbot" / "prod.t05.json"
    state.parent.mkdir(parents=True)
    state.write_text("{}")
    report = world.fleet().run(world.stacks, UP)
    assert world.ran() == ["prod.t05"]
    assert next(r for r in report.results if r.stack == "prod.t05").result is Result.OK


def test_force_ignores_change_detection(world: World) -> None:
    world.fleet().run(world.stacks, UP)
    world.executor.calls.clear()
    world.fleet().run(world.stacks, RolloutOptions(Operation.UP, force=True, wave_size=10, retry_delay_s=0))
    assert sorted(world.ran()) == world.stacks


def test_failed_canary_halts_everything(world: World) -> None:
    world.executor.failures["prod.t00"] = [StackError("stack prod.t00 (tenant t00): pulumi up failed: 10014")]
    report = world.fleet().run(world.stacks, RolloutOptions(Operation.UP, wave_size=3, continue_on_error=True))
    assert report.halted and report.exit_code == 1
    assert report.halt_reason == "canary failed: t00"
    assert world.ran() == ["prod.t00"]
    assert {r.result for r in report.results[1:]} == {Result.NOT_RUN}
    assert "10014" in report.results[0].detail


def test_failed_wave_halts_unless_continue_on_error(world: World) -> None:
    world.executor.failures["prod.t02"] = [StackError("boom")]
    report = world.fleet().run(world.stacks, UP)
    assert report.halted and report.halt_reason == "wave 1 failed: t02"
    assert [r.result for r in report.results] == [Result.OK, Result.OK, Result.FAILED, Result.OK, *[Result.NOT_RUN] * 3]

    world2 = World(world.project.parent / "again")
    world2.executor.failures["prod.t02"] = [StackError("boom")]
    report2 = world2.fleet().run(world2.stacks, RolloutOptions(Operation.UP, wave_size=3, continue_on_error=True))
    assert not report2.halted and report2.exit_code == 1
    assert report2.counts() == {"ok": 6, "failed": 1}


def test_failed_health_gate_halts_and_rolls_the_wave_back(world: World) -> None:
    world.gate.sick = {"t02"}
    report = world.fleet().run(
        world.stacks, RolloutOptions(Operation.UP, wave_size=3, rollback=True, continue_on_error=True)
    )
    assert report.halted and report.halt_reason == "health gate failed in wave 1: t02"
    by = {r.stack: r for r in report.results}
    assert {by[s].result for s in ("prod.t01", "prod.t02", "prod.t03")} == {Result.ROLLED_BACK}
    assert "status degraded" in by["prod.t02"].detail
    assert by["prod.t00"].result is Result.OK and by["prod.t04"].result is Result.NOT_RUN
    assert sorted(s for s, op in world.executor.calls if op == "rollback") == ["prod.t01", "prod.t02", "prod.t03"]
    assert world.store.last_good("prod.t02") is None  # never passed a gate: nothing to keep
    rollbacks = [e for e in read_events(world.settings.audit_log) if e.operation == "rollback"]
    assert len(rollbacks) == 3


def test_failed_gate_without_rollback_leaves_the_wave_as_is(world: World) -> None:
    world.gate.sick = {"t00"}
    report = world.fleet().run(world.stacks, UP)
    assert report.halted and report.results[0].result is Result.UNHEALTHY
    assert not any(op == "rollback" for _, op in world.executor.calls)


def test_rollback_failure_is_reported(world: World) -> None:
    world.gate.sick = {"t00"}
    world.executor.rollback_failures.add("prod.t00")
    report = world.fleet().run(world.stacks, RolloutOptions(Operation.UP, rollback=True))
    assert report.results[0].result is Result.ROLLBACK_FAILED
    assert "simulated rollback failure" in report.results[0].detail


def test_transient_failures_are_retried(world: World) -> None:
    world.executor.failures["prod.t00"] = [TransientStackError("busy"), TransientStackError("busy")]
    report = world.fleet().run(world.stacks[:1], UP)
    assert report.ok and report.results[0].attempts == 3

    world.executor.failures["prod.t01"] = [TransientStackError("busy")] * 3
    report = world.fleet().run(["prod.t01"], UP)
    assert report.results[0].result is Result.FAILED and report.results[0].attempts == 3


def test_a_bug_in_one_tenant_does_not_stop_the_others(world: World) -> None:
    world.executor.failures["prod.t01"] = [KeyError("surprise")]
    report = world.fleet().run(world.stacks, RolloutOptions(Operation.UP, continue_on_error=True))
    assert report.counts() == {"ok": 6, "failed": 1}
    assert "unexpected KeyError" in report.results[1].detail


def test_concurrency_is_bounded(world: World) -> None:
    world.executor.latency_s = lambda stack, op: 0.05
    world.fleet().run(world.stacks, RolloutOptions(Operation.PREVIEW, concurrency=3))
    assert world.executor.max_in_flight == 3


def test_missing_stack_file_fails_that_tenant_before_any_deploy(world: World) -> None:
    (world.project / "Pulumi.prod.t03.yaml").unlink()
    report = world.fleet().run(world.stacks, UP)
    assert report.halted and world.executor.calls == []
    assert "no stack file" in report.results[3].detail

    report = world.fleet().run(world.stacks, RolloutOptions(Operation.UP, continue_on_error=True))
    assert report.counts() == {"ok": 6, "failed": 1} and report.exit_code == 1


def test_preflight_blocks_a_locked_stack_without_running_it(world: World) -> None:
    fleet = world.fleet(preflight=lambda s: "locked by ops@other" if s == "prod.t01" else None)
    report = fleet.run(world.stacks[:3], RolloutOptions(Operation.REFRESH))
    assert [r.result for r in report.results] == [Result.OK, Result.FAILED, Result.OK]
    assert report.results[1].detail == "locked by ops@other"
    assert ("prod.t01", "refresh") not in world.executor.calls


def test_drift_is_reported_per_tenant_and_fails_the_run(world: World) -> None:
    finding = DriftFinding("urn::acme-worker", "cloudflare:index/workersScript:WorkersScript", "update", ("content",))
    world.executor.drift["prod.t01"] = DriftReport((finding,))
    report = world.fleet().run(world.stacks[:3], RolloutOptions(Operation.REFRESH, drift_check=True, preview_only=True))
    assert [r.result for r in report.results] == [Result.NO_DRIFT, Result.DRIFTED, Result.NO_DRIFT]
    assert report.exit_code == 1 and "acme-worker: update content" in report.results[1].detail
    saved = world.store.drift("prod.t01")
    assert saved is not None and saved.drifted


def test_destroy_forgets_the_record(world: World) -> None:
    world.fleet().run(world.stacks[:2], UP)
    world.fleet().run(["prod.t01"], RolloutOptions(Operation.DESTROY))
    assert world.store.get("prod.t01") is None and world.store.get("prod.t00") is not None


def test_report_json_shape(world: World) -> None:
    report = world.fleet().run(world.stacks[:2], UP)
    data = report.as_dict()
    assert data["ok"] is True and data["counts"] == {"ok": 2}
    assert data["tenants"][0]["tenant"] == "t00" and data["tenants"][0]["result"] == "ok"


def test_fleet_inputs_digest_real_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "components").mkdir(parents=True)
    (repo / "components" / "edge.py").write_text("x = 1\n")
    (repo / "worker_src" / "src").mkdir(parents=True)
    (repo / "worker_src" / "src" / "index.js").write_text("export default {}\n")
    first = FleetInputs.compute(repo, repo)
    assert FleetInputs.compute(repo, repo) == first
    (repo / "worker_src" / "src" / "index.js").write_text("export default {fetch(){}}\n")
    second = FleetInputs.compute(repo, repo)
    assert second.program_digest == first.program_digest and second.render_digest != first.render_digest
    (repo / "components" / "edge.py").write_text("x = 2\n")
    assert FleetInputs.compute(repo, repo).program_digest != first.program_digest


def test_threads_share_one_executor_safely(world: World) -> None:
    seen: set[str] = set()
    lock = threading.Lock()

    def note(stack: str, i: int) -> None:
        with lock:
            seen.add(f"{stack}:{i}")

    world.executor.call_api, world.executor.api_calls = note, 5
    world.fleet().run(world.stacks, RolloutOptions(Operation.UP, concurrency=4, health_gate=False))
    assert len(seen) == 35
