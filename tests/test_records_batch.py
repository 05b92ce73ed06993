"""Deployed records written in batches: a wave's after its gate, a re-render's after the decisions.

Each batch is one `write_many_atomically` (one sync for the data, one for the renames), so a
1,000-tenant re-render writes 1,000 records without 2,000 fsyncs. The records are the same bytes
`put` and `mark_good` write one by one, and a batch that cannot be written costs only a redeploy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator.config.settings import Settings
from orchestrator.core.health import GateResult, HealthCheck, HealthTarget
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet.changes import FleetInputs, Rendered
from orchestrator.fleet.ports import DeployedRecord, Operation
from orchestrator.fleet.report import Result, RolloutOptions
from orchestrator.fleet.rollout import Fleet
from orchestrator.testing.simulated import SimulatedExecutor

UP = RolloutOptions(Operation.UP, concurrency=2, wave_size=3, retry_delay_s=0)


def ok_gate(targets: Sequence[HealthTarget]) -> GateResult:
    return GateResult(tuple(HealthCheck(t, "ok", "ok") for t in targets))


class CountingStore(FileDeployedStore):
    def __init__(self, settings: Settings, project: str) -> None:
        super().__init__(settings, project)
        self.batches: list[tuple[list[str], bool]] = []
        self.fail: OSError | None = None

    def put_many(self, records: Sequence[DeployedRecord], *, good: bool = False) -> None:
        self.batches.append(([r.stack for r in records], good))
        if self.fail is not None:
            raise self.fail
        super().put_many(records, good=good)


class World:
    def __init__(self, tmp_path: Path, tenants: int = 7) -> None:
        self.project = tmp_path / "project"
        self.project.mkdir()
        self.stacks = [f"prod.t{i:02d}" for i in range(tenants)]
        for stack in self.stacks:
            (self.project / f"Pulumi.{stack}.yaml").write_text("config: {v: 1}\n")
        self.settings = Settings(
            project_dir=self.project,
            state_dir=tmp_path / "state",
            work_root=tmp_path / "work",
            passphrase_file=tmp_path / "pp",
            audit_log=tmp_path / "audit.jsonl",
        )
        self.store = CountingStore(self.settings, "clawdbot")
        self.inputs = FleetInputs(program_digest="p1", render_digest="r1")
        self.executor = SimulatedExecutor(health_base="http://127.0.0.1:1")

    def fleet(self) -> Fleet:
        return Fleet(
            self.executor,
            self.store,
            desired=lambda s: self.inputs.desired(self.project, s),
            render=lambda s: Rendered(f"sim-{s}", 1),
            gate=ok_gate,
            sleep=lambda s: None,
        )


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_each_wave_is_committed_in_one_batch_after_its_gate(world: World) -> None:
    report = world.fleet().run(world.stacks, UP)
    assert report.ok
    assert world.store.batches == [
        (["prod.t00"], True),
        (["prod.t01", "prod.t02", "prod.t03"], True),
        (["prod.t04", "prod.t05", "prod.t06"], True),
    ]
    for stack in world.stacks:
        record = world.store.get(stack)
        assert record is not None and record.bundle_hash == f"sim-{stack}"
        assert world.store.last_good(stack) == record


def test_a_batch_holds_what_put_and_mark_good_write_one_by_one(world: World, tmp_path: Path) -> None:
    record = DeployedRecord(
        stack="prod.t00",
        bundle_hash="h",
        config_version=2,
        health_url=None,
        config_digest="c",
        program_digest="p",
        render_digest="r",
        state_fingerprint=None,
        updated_at="2026-01-01T00:00:00Z",
    )
    paths = world.store.paths("prod.t00")
    paths.work_dir.mkdir(parents=True)
    paths.work_file.write_text("config: {v: 1}\n")
    state = world.settings.state_dir / ".pulumi" / "stacks" / "clawdbot"
    state.mkdir(parents=True)
    (state / "prod.t00.json").write_text("{}")
    world.store.put(record)
    world.store.mark_good("prod.t00")
    one_by_one = {p: p.read_bytes() for p in (paths.record_file, paths.last_good_record, paths.last_good_file)}
    for p in one_by_one:
        p.unlink()
    world.store.put_many([record], good=True)
    assert {p: p.read_bytes() for p in one_by_one} == one_by_one
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in one_by_one)
    stored = world.store.get("prod.t00")
    assert stored is not None and not world.store.state_changed(stored), "stamped with the state's fingerprint"


def test_a_re_render_writes_every_refreshed_record_in_one_batch(world: World) -> None:
    world.fleet().run(world.stacks, UP)
    world.store.batches.clear()
    world.inputs = FleetInputs(program_digest="p1", render_digest="r2")  # a render input changed
    report = world.fleet().run(world.stacks, UP)
    assert {r.detail for r in report.results} == {"unchanged (re-rendered: same bundle)"}
    assert world.store.batches == [(world.stacks, False)]
    again = world.fleet().run(world.stacks, UP)
    assert {r.detail for r in again.results} == {"unchanged"}, "the refreshed records are read back"


def test_a_wave_whose_records_cannot_be_written_is_deployed_and_says_so(world: World) -> None:
    world.store.fail = OSError(28, os.strerror(28))
    report = world.fleet().run(world.stacks, UP)
    assert {r.result for r in report.results} == {Result.OK} and not report.halted
    assert all("deployed, but its record was not written" in r.detail for r in report.results)
    assert all(world.store.get(s) is None for s in world.stacks), "nothing half-written: a redeploy later"


def test_a_re_render_whose_batch_fails_still_decides_and_redoes_it_next_run(world: World) -> None:
    world.fleet().run(world.stacks, UP)
    world.inputs = FleetInputs(program_digest="p1", render_digest="r2")
    world.store.fail = OSError(28, os.strerror(28))
    report = world.fleet().run(world.stacks, UP)
    assert {r.result for r in report.results} == {Result.UNCHANGED}
    world.store.fail = None
    again = world.fleet().run(world.stacks, UP)
    assert {r.detail for r in again.results} == {"unchanged (re-rendered: same bundle)"}
