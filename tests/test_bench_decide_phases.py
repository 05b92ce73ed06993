"""bench/decide_phases.py: every phase it names is measured over every tenant, and the README runs it."""

from __future__ import annotations

from pathlib import Path

from bench.decide_phases import PHASES, measure
from bench.fleet_rollout import decide_world
from orchestrator.core.contract import REPO_ROOT
from orchestrator.engine.records import FileDeployedStore


def test_each_phase_is_measured_and_the_refreshed_records_are_written(tmp_path: Path) -> None:
    world = decide_world(tmp_path / "world", 4)
    figures = measure(tmp_path / "world", repeats=2)
    assert set(figures) == set(PHASES)
    assert all(value >= 0 for value in figures.values())
    store = FileDeployedStore(world.settings, "clawdbot")
    # The batch write ran on the real records: each now carries the last pass's render digest.
    assert {store.get(stack).render_digest for stack in world.fresh} == {"bench-1"}  # type: ignore[union-attr]


def test_the_readme_gives_its_command() -> None:
    assert "python -m bench.decide_phases --baseline main --json" in (REPO_ROOT / "README.md").read_text()
