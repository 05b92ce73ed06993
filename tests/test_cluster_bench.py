"""bench/cluster_rollout.py: what its `--json` says and how it is computed (never how fast anything is)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cluster_rollout import PHASES, _rounds, build_parser, phases, summarise_overhead
from orchestrator.core.contract import REPO_ROOT
from orchestrator.fleet.sizing import Sizing
from orchestrator.ops.fleet_run import DEFAULT_SIZING

OVERHEAD_KEYS = {
    "tenants",
    "concurrency",
    "wave_size",
    "op_s",
    "time_scale",
    "op_s_run",
    "unscaled",
    "rounds_of_operations",
    "wall_s",
    "ratio_min",
    "ratio_median",
    "fixed_s_per_round",
    "target",
}
THROUGHPUT_KEYS = {
    "worker_processes",
    "processes_that_ran_operations",
    "slots",
    "ops_per_s",
    "wall_s",
    "ideal_wall_s",
    "of_ideal",
}


def test_the_ratio_is_taken_per_side_by_side_pair_then_min_and_median() -> None:
    walls = {"embedded": [25.5, 26.0, 25.5], "temporal": [30.6, 28.6, 76.5]}
    out = summarise_overhead(walls, 13, Sizing(4, 6), 5.0, 1.0)
    # Pairs 1.2, 1.1, 3.0: min 1.1, median 1.2 (not the ratio of the medians, 30.6 / 25.5).
    assert (out["ratio_min"], out["ratio_median"]) == (1.1, 1.2)
    assert set(out) == OVERHEAD_KEYS and out["unscaled"] is True and out["op_s_run"] == 5.0
    # 13 tenants: the canary, then waves of 6, 6 at 4 at once: 1 + 2 + 2 rounds of 5 s.
    assert out["rounds_of_operations"] == 5
    assert out["fixed_s_per_round"] == {"embedded": 0.1, "temporal": 1.12}


def test_a_scaled_run_says_so_and_adds_the_projection_for_unscaled_operations() -> None:
    walls = {"embedded": [3.0, 3.0], "temporal": [4.0, 4.0]}
    out = summarise_overhead(walls, 13, Sizing(4, 6), 5.0, 0.1)
    assert out["unscaled"] is False and out["time_scale"] == 0.1 and out["op_s_run"] == 0.5
    # 5 rounds of 0.5 s: fixed 0.1 s per round embedded, 0.3 s temporal -> (5 + 0.3) / (5 + 0.1).
    assert out["fixed_s_per_round"] == {"embedded": 0.1, "temporal": 0.3}
    assert out["projected_ratio_at_op_s"] == round(5.3 / 5.1, 3)
    assert out["ratio_median"] == round(4 / 3, 3), "the measured ratio is printed as measured"


def test_rounds_of_operations_follow_the_rollouts_waves() -> None:
    assert _rounds(200, 72, 6) == 1 + 12 + 12 + 10  # canary, 72, 72, 55
    assert _rounds(200, 25, 8) == 1 + 7 * 4 + 3  # canary, seven waves of 25, one of 24
    assert _rounds(1, 72, 6) == 1


def test_the_default_run_is_the_issues_condition_and_fits_its_time() -> None:
    args = build_parser().parse_args([])
    # Unscaled 5 s operations, 200 tenants, the CLI's own sizing; interleaved, repeated.
    assert (args.tenants, args.op_s, args.time_scale) == (200, 5.0, 1.0)
    assert (args.concurrency or DEFAULT_SIZING.concurrency, args.wave_size or DEFAULT_SIZING.wave_size) == (6, 72)
    assert args.repeat >= 2 and args.workers == [1, 2, 4]
    # The operations alone (both engines, every repetition, the throughput rounds) take under 15 min.
    overhead_s = 2 * args.repeat * _rounds(200, 72, 6) * 5.0
    latency = args.op_s * args.throughput_time_scale
    throughput_s = sum(_rounds(200, 200, n * args.slots) * latency for n in args.workers)
    assert overhead_s + throughput_s < 15 * 60, (overhead_s, throughput_s)


def test_the_phases_split_the_time_beyond_the_operations_from_the_ledger(tmp_path: Path) -> None:
    # Two waves (a canary, then three stacks at two at once) of 1 s operations; times from t = 100.
    lines = {
        "a": ["start up 1 100.5", "done up 1 101.5"],
        "b": ["start up 1 103.5", "done up 1 104.5"],
        "c": ["start up 1 103.5", "done up 1 104.6"],
        "d": ["start up 1 104.8", "transient up 1 105.0", "start up 1 105.2", "done up 1 106.2"],
    }
    for stack, text in lines.items():
        (tmp_path / f"{stack}.log").write_text("\n".join(text) + "\n")
    out = phases(tmp_path, [["a"], ["b", "c", "d"]], 2, 1.0, 100.0, 107.0)
    # The canary's plan 0.5 s; the second wave spans 2.7 s for 2 rounds; 2 s between waves; 0.8 s after.
    assert out == {
        "to_first_operation": 0.5,
        "waves_beyond_operations": 0.7,
        "between_waves": 2.0,
        "after_last_operation": 0.8,
    }
    assert set(out) == set(PHASES)


def test_every_key_is_documented_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    keys = OVERHEAD_KEYS | THROUGHPUT_KEYS | {"projected_ratio_at_op_s", "phases_s", *PHASES}
    missing = [k for k in sorted(keys) if not re.search(rf"`{re.escape(k)}`", readme)]
    assert missing == []


@pytest.mark.temporal
def test_a_small_run_prints_every_key_and_runs_each_worker_in_its_own_process() -> None:
    """The whole bench in a subprocess (its dev server, its worker processes, its client: the Temporal
    client stays out of pytest's process, temporalio/sdk-python#300)."""
    argv = ["--tenants", "9", "--time-scale", "0.01", "--repeat", "1", "--workers", "1,2", "--slots", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.cluster_rollout", "--json", *argv, "--throughput-time-scale", "0.1"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    overhead, throughput = result["overhead"], result["throughput"]
    assert set(overhead) == OVERHEAD_KEYS | {"projected_ratio_at_op_s", "phases_s"} and overhead["time_scale"] == 0.01
    assert all(set(overhead["phases_s"][engine]) == set(PHASES) for engine in ("embedded", "temporal"))
    assert overhead["ratio_min"] > 0 and len(overhead["wall_s"]["temporal"]) == 1
    assert throughput["time_scale"] == 0.1
    for count in (1, 2):
        row = throughput[str(count)]
        assert set(row) == THROUGHPUT_KEYS and row["slots"] == 2 * count
        # 4 operations of 0.5 s at once on two workers of 2 slots: both processes must have run some.
        assert row["worker_processes"] == row["processes_that_ran_operations"] == count
    assert "overhead temporal 1/1" in done.stderr, "progress goes to stderr"
