"""Fleet scheduling with the simulated executor: waves, canary, health gate, halting, rollback,
retries, concurrency, change detection, drift and the audit trail. No Pulumi CLI involved."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator.config.settings import Settings
from orchestrator.core.drift import DriftFinding, DriftReport
from orchestrator.core.errors import SetupError, StackError, TransientStackError
from orchestrator.core.health import GateResult, HealthCheck, HealthTarget
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet.audit import AuditLog, read_events
from orchestrator.fleet.changes import FleetInputs, Rendered
from orchestrator.fleet.ports import Clearance, KeptResource, Operation, Preflight
from orchestrator.fleet.report import Result, RolloutOptions
from orchestrator.fleet.rollout import Fleet
from orchestrator.testing.simulated import SimulatedExecutor

D1 = "cloudflare:index/d1Database:D1Database"

UP = RolloutOptions(Operation.UP, concurrency=3, wave_size=3, retry_delay_s=0)


class Gate:
    """Health gate double: tenants listed in `sick` fail unless they serve a bundle in `cures`."""

    def __init__(self, sick: Sequence[str] = ()) -> None:
        self.sick = set(sick)
        self.cures: set[str] = set()
        self.asked: list[list[HealthTarget]] = []

    def __call__(self, targets: Sequence[HealthTarget]) -> GateResult:
        self.asked.append(list(targets))
        checks = []
        for t in targets:
            bad = t.tenant in self.sick and t.bundle_hash not in self.cures
            checks.append(HealthCheck(t, "degraded" if bad else "ok", "status degraded" if bad else "ok"))
        return GateResult(tuple(checks))


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
    world.renders.clear()
    again = world.fleet().run(world.stacks, UP)
    assert world.renders == [] and {r.detail for r in again.results} == {"unchanged"}  # fast path again


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


ROLLBACK = RolloutOptions(Operation.UP, wave_size=3, rollback=True, continue_on_error=True, retry_delay_s=0)


def second_release(world: World) -> None:
    """Everyone deployed and healthy once; then new config for every tenant (a new bundle each)."""
    assert world.fleet().run(world.stacks, UP).ok
    world.executor.calls.clear()
    for stack in world.stacks:
        world.write(stack, "v2")
        world.executor.bundles[stack] = f"new-{stack}"
        world.executor.rollback_bundles[stack] = f"good-{stack}"
        world.gate.cures.add(f"good-{stack}")


def test_failed_health_gate_halts_and_rolls_the_wave_back(world: World) -> None:
    second_release(world)
    good = world.store.last_good("prod.t02")
    world.gate.sick = {"t02"}
    report = world.fleet().run(world.stacks, ROLLBACK)
    assert report.halted and report.halt_reason == "health gate failed in wave 1: t02"
    by = {r.stack: r for r in report.results}
    assert {by[s].result for s in ("prod.t01", "prod.t02", "prod.t03")} == {Result.ROLLED_BACK}
    assert "status degraded" in by["prod.t02"].detail
    assert by["prod.t00"].result is Result.OK and by["prod.t04"].result is Result.NOT_RUN
    assert sorted(s for s, op in world.executor.calls if op == "rollback") == ["prod.t01", "prod.t02", "prod.t03"]
    # The record tells what the rollback's up produced, not what the last good record claims...
    record = world.store.get("prod.t02")
    assert good is not None and record is not None
    assert by["prod.t02"].bundle_hash == record.bundle_hash == "good-prod.t02"
    assert record.config_digest == good.config_digest  # the old stack file is what is deployed
    # ...and only after the rolled-back wave passed the gate again.
    assert [t.bundle_hash for t in world.gate.asked[-1]] == ["good-prod.t01", "good-prod.t02", "good-prod.t03"]
    events = read_events(world.settings.audit_log)
    assert len([e for e in events if e.operation == "rollback" and e.result == "rolled-back"]) == 3
    assert len([e for e in events if e.operation == "rollback-gate"]) == 3


def test_rollback_still_unhealthy_is_a_failed_rollback_without_a_record(world: World) -> None:
    second_release(world)
    world.gate.sick = {"t00"}
    world.gate.cures.clear()
    report = world.fleet().run(world.stacks, ROLLBACK)
    assert report.results[0].result is Result.ROLLBACK_FAILED
    assert "still unhealthy after the rollback" in report.results[0].detail
    assert world.store.get("prod.t00") is None  # next run deploys and gates it again


def test_rollback_is_refused_when_the_code_changed_since_last_good(world: World) -> None:
    second_release(world)
    world.inputs = FleetInputs(program_digest="p2", render_digest="r1")
    world.gate.sick = {"t00"}
    report = world.fleet().run(world.stacks, ROLLBACK)
    assert report.results[0].result is Result.ROLLBACK_FAILED
    assert "rollback impossible: code changed since last good; redeploy the previous commit" in report.results[0].detail
    assert not any(op == "rollback" for _, op in world.executor.calls)


def test_rollback_without_a_last_good_deployment_is_refused(world: World) -> None:
    world.gate.sick = {"t00"}
    report = world.fleet().run(world.stacks, ROLLBACK)
    assert report.results[0].result is Result.ROLLBACK_FAILED
    assert "no last good deployment" in report.results[0].detail
    assert not any(op == "rollback" for _, op in world.executor.calls)


def test_failed_gate_without_rollback_leaves_the_wave_as_is(world: World) -> None:
    world.gate.sick = {"t00"}
    report = world.fleet().run(world.stacks, UP)
    assert report.halted and report.results[0].result is Result.UNHEALTHY
    assert not any(op == "rollback" for _, op in world.executor.calls)


def test_a_tenant_that_failed_its_gate_is_deployed_and_gated_again(world: World) -> None:
    world.gate.sick = {"t00"}
    assert world.fleet().run(world.stacks, UP).halted
    assert world.store.get("prod.t00") is None and world.store.last_good("prod.t00") is None
    world.gate.sick = set()
    world.executor.calls.clear()
    report = world.fleet().run(world.stacks, UP)
    assert report.ok and "prod.t00" in world.ran()
    assert report.results[0].result is Result.OK and world.gate.asked[-3][0].stack == "prod.t00"
    assert world.store.get("prod.t00") is not None


def test_a_redeploy_that_fails_its_gate_drops_the_old_record(world: World) -> None:
    second_release(world)
    world.gate.sick = {"t00"}
    world.gate.cures.clear()
    world.fleet().run(world.stacks, UP)
    assert world.store.get("prod.t00") is None
    assert world.store.last_good("prod.t00") is not None  # kept for a rollback


def test_rollback_failure_is_reported(world: World) -> None:
    second_release(world)
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
    fleet = world.fleet(
        preflight=lambda s, op: Clearance("locked by ops@other", ("wait",)) if s == "prod.t01" else Clearance()
    )
    report = fleet.run(world.stacks[:3], RolloutOptions(Operation.REFRESH))
    assert [r.result for r in report.results] == [Result.OK, Result.FAILED, Result.OK]
    assert report.results[1].detail == "locked by ops@other" and report.results[1].advice == ("wait",)
    assert ("prod.t01", "refresh") not in world.executor.calls


def test_preflight_advice_that_does_not_block_is_reported_and_audited(world: World) -> None:
    advice = "stack prod.t01: an interrupted update was creating x; run `refresh --clear-pending-creates`"
    fleet = world.fleet(preflight=lambda s, op: Clearance(None, (advice,)) if s == "prod.t01" else Clearance())
    report = fleet.run(world.stacks[:2], RolloutOptions(Operation.PREVIEW))
    assert report.ok and report.results[1].advice == (advice,)
    assert report.as_dict()["tenants"][1]["advice"] == [advice]
    events = [e for e in read_events(world.settings.audit_log) if e.operation == "preflight"]
    assert [(e.stack, e.result) for e in events] == [("prod.t01", "warning")]
    assert events[0].detail is not None and "clear-pending-creates" in events[0].detail


def test_a_setup_error_halts_the_run_and_cancels_queued_stacks(world: World) -> None:
    world.executor.failures["prod.t01"] = [SetupError("Pulumi CLI not found: install it")]
    report = world.fleet().run(world.stacks, RolloutOptions(Operation.PREVIEW, concurrency=1))
    assert report.halted and report.halt_reason == "setup error: Pulumi CLI not found: install it"
    assert [r.result for r in report.results] == [Result.OK, Result.FAILED, *[Result.NOT_RUN] * 5]
    assert [s for s, _ in world.executor.calls] == ["prod.t00", "prod.t01"]

    world.executor.failures["prod.t01"] = [SetupError("Pulumi CLI not found: install it")]
    up = world.fleet().run(world.stacks, RolloutOptions(Operation.UP, concurrency=1, wave_size=10))
    assert up.halted and up.halt_reason == "setup error: Pulumi CLI not found: install it"
    assert [r.result for r in up.results][1:3] == [Result.FAILED, Result.NOT_RUN]


def test_exception_text_in_the_report_is_redacted(world: World) -> None:
    world.executor.failures["prod.t00"] = [ValueError("Authorization: Bearer sekrit-token-123")]
    world.executor.failures["prod.t01"] = [StackError("upstream said Bearer sekrit-token-456")]
    report = world.fleet().run(world.stacks[:2], RolloutOptions(Operation.PREVIEW))
    text = str(report.as_dict())
    assert "sekrit" not in text and "[redacted]" in text


def test_destroy_reports_what_it_kept(world: World) -> None:
    kept = KeptResource("urn:pulumi:prod.t01::clawdbot::cloudflare:index/d1Database:D1Database::t01", D1)
    world.executor.kept["prod.t01"] = (kept,)
    report = world.fleet().run(["prod.t01"], RolloutOptions(Operation.DESTROY))
    assert report.ok and report.results[0].detail == "kept protected D1 database t01"
    assert report.results[0].advice == (f"remove {kept.urn} deliberately",)


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


def test_threads_share_one_executor_safely(world: World) -> None:
    seen: set[str] = set()
    lock = threading.Lock()

    def note(stack: str, i: int) -> None:
        with lock:
            seen.add(f"{stack}:{i}")

    world.executor.call_api, world.executor.api_calls = note, 5
    world.fleet().run(world.stacks, RolloutOptions(Operation.UP, concurrency=4, health_gate=False))
    assert len(seen) == 35
