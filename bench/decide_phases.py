"""Where `up --all`'s change detection spends its time per tenant, this tree against a baseline commit.

`bench.fleet_rollout`'s `decide_1000_s` and `rerender_1000_s` time the whole process; this splits
the per-tenant part into the calls the run makes for each stack, so a change can be credited to the
phase it moved. Each phase runs over every tenant of one `decide_world` (the realistic stack files
and records of `bench.fleet_rollout`), timed in CPU seconds (`time.process_time`: less disturbed by
a shared machine than wall time), in a fresh process per tree and round. The trees alternate, and
which goes first alternates by round. Phases:

- `desired`: the stack file's digest; `record_read`: `FileDeployedStore.get`; `state_changed`: the
  checkpoint's fingerprint (all three for every tenant, also when nothing changed);
- `yaml`: `load_plain` of the stack file's bytes (part of `load_tenant_spec`); `load_tenant_spec`:
  read, YAML, config checks, pydantic; `bundle_identity`: the bundle hash (a re-render);
- `batch_write`: `put_many` of the refreshed records (CPU only; its syncs wait on the disk).

Run: `.venv/bin/python -m bench.decide_phases --baseline main --json` (`--tenants`, `--rounds`).
`--json` prints one object: per phase, {min, median} ms per tenant of each tree and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PHASES = ("desired", "record_read", "state_changed", "yaml", "load_tenant_spec", "bundle_identity", "batch_write")


def measure(world: Path, repeats: int) -> dict[str, float]:
    """CPU ms per tenant of each phase (the lowest of `repeats`), with whichever tree is on sys.path."""
    from orchestrator.config.settings import Settings
    from orchestrator.config.stack_yaml import load_plain
    from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec, tenant_stacks
    from orchestrator.core.contract import REPO_ROOT
    from orchestrator.core.render import bundle_identity
    from orchestrator.engine.records import FileDeployedStore
    from orchestrator.fleet.changes import FleetInputs

    settings = Settings(
        project_dir=world / "project",
        state_dir=world / "state",
        work_root=world / "work",
        passphrase_file=world / "pp",
        audit_log=world / "audit.jsonl",
    )
    project = settings.project_dir
    store = FileDeployedStore(settings, "clawdbot")
    stacks = tenant_stacks(project)
    platform = load_platform_spec(project)
    inputs = FleetInputs.compute(project, REPO_ROOT)
    raw = [(project / f"Pulumi.{stack}.yaml").read_bytes() for stack in stacks]
    best: dict[str, float] = {}

    def timed(phase: str, call: Callable[[Any], Any], items: list[Any], tenants: int | None = None) -> list[Any]:
        started = time.process_time()
        out = [call(item) for item in items]
        per_tenant = (time.process_time() - started) * 1000 / (tenants or len(items))
        best[phase] = min(best.get(phase, per_tenant), per_tenant)
        return out

    for repeat in range(repeats):
        timed("desired", lambda stack: inputs.desired(project, stack), stacks)
        records = timed("record_read", store.get, stacks)
        timed("state_changed", store.state_changed, records)
        timed("yaml", load_plain, raw)
        specs = timed("load_tenant_spec", lambda stack: load_tenant_spec(project, stack), stacks)
        timed("bundle_identity", lambda spec: bundle_identity(spec, platform), specs)
        refreshed = [r.model_copy(update={"render_digest": f"bench-{repeat}"}) for r in records]
        timed("batch_write", store.put_many, [refreshed], tenants=len(refreshed))
    return best


def child(tree: Path, world: Path, repeats: int) -> dict[str, float]:
    """One measurement in a fresh interpreter that imports `orchestrator` from `tree`."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(world), "--repeats", str(repeats)],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"measuring {tree} failed: {done.stderr[-800:]}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def baseline_tree(ref: str, into: Path) -> Path:
    """The files of commit `ref` (git archive), to import the baseline's code from."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def summary(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 4), "median": round(statistics.median(values), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="git ref to compare with (e.g. main); without it, this tree alone")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per tree")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the tenants inside each process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child), args.repeats)))
        return
    sys.path.insert(0, str(REPO))
    from bench.fleet_rollout import decide_world

    root = Path(tempfile.mkdtemp(prefix="decide-phases-"))
    try:
        decide_world(root / "world", args.tenants)
        trees = {"this": REPO}
        if args.baseline:
            trees["baseline"] = baseline_tree(args.baseline, Path(tempfile.mkdtemp(dir=root)))
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for number in range(args.rounds):
            order = list(trees) if number % 2 == 0 else list(reversed(trees))
            for name in order:
                runs[name].append(child(trees[name], root / "world", args.repeats))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    phases: dict[str, dict[str, Any]] = {}
    for phase in PHASES:
        row: dict[str, Any] = {name: summary([run[phase] for run in runs[name]]) for name in trees}
        if "baseline" in row:
            row["ratio_min"] = round(row["this"]["min"] / row["baseline"]["min"], 3)
        phases[phase] = row
    result = {"unit": "CPU ms per tenant", "tenants": args.tenants, "rounds": args.rounds, "baseline": args.baseline}
    print(json.dumps(result | {"phases": phases}, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
