"""Fleet benchmark: what a user pays for a rollout and for deciding there is nothing to roll out.

Three measures, interleaved round by round (the order rotates), repeated, each reported as
{min, median} over rounds (`--json`: one object with these keys):

- `budget_use_defaults`: share of Cloudflare's budget (1,200 requests / 5 min) a 200-tenant `up`
  spends, with the `up` command's DEFAULT flags (read from the CLI itself: concurrency, wave size,
  budget, gate timeout) and the real health gate (`orchestrator.fleet.health.gate`, one probe every
  5 s). Time is scaled (`--time-scale`): the simulated engine spends `--engine-s` per up and makes
  `--api-calls` requests over real loopback HTTP through `ThrottleProxy` to an upstream that enforces
  the budget; each edge serves its new bundle `--propagation-s` after its up returned. One run of
  this rollout is `run_rollout(engine, ...)`; `ENGINES` names the engines (`--engine`). What is not
  simulated is not scaled (Python, HTTP on loopback, file writes), so it weighs 1/time-scale times
  more than for a user: the default scale (0.05) keeps that small, and the records sit on tmpfs.
- `upstream_429`: 429s the upstream had to send in that rollout (the proxy must never cause one).
- `decide_1000_s`: the whole `python -m orchestrator up --all --json` process (interpreter start and
  CLI import included) over 1,000 tenants whose stack files and records match: nothing to do.
- `rerender_1000_s`: the same process after a change to a render input (the records' render digest
  no longer matches, and the remembered program closure is gone as after any edit of a repo
  module), so every bundle is rendered again and found unchanged.

`--engine temporal` runs the rollout through the cluster engine (a Temporal dev server, a worker in
this process over the same ports; its workflow bookkeeping is real time, not scaled, so at the
default scale its `budget_use_defaults` is pessimistic for that engine), prints `engine_of` (the
decide processes run the CLI's default engine: deciding that nothing changed is the same code in
both) and adds `cluster`: `bench/cluster_rollout.py` with `--cluster-args` (default: real 5 s
operations, ~15 min; `--cluster-args "--time-scale 0.1"` is its quick mode; `--skip-cluster`).

Run: `.venv/bin/python -m bench.fleet_rollout --json` (`--help` for the knobs). Everything is
loopback; the decide processes need no Pulumi CLI (a run with nothing to do never starts the engine).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bench.fleet_sim import ApiClient, Edges, Propagating, Upstream, World, stop
from orchestrator.config.settings import Settings
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.names import stack_file, tenant_stack
from orchestrator.engine.budget import ThrottleConfig
from orchestrator.engine.records import FileDeployedStore
from orchestrator.engine.throttle import ThrottleProxy
from orchestrator.fleet import health
from orchestrator.fleet.changes import CLOSURE_CACHE, FleetInputs, Rendered, bundle_renderer
from orchestrator.fleet.ports import DeployedRecord, Operation
from orchestrator.fleet.report import FleetReport, RolloutOptions
from orchestrator.fleet.rollout import Fleet
from orchestrator.ops.scratch import ScratchProject, synthetic_tenant, write_passphrase_file
from orchestrator.testing.simulated import SimulatedExecutor

Engine = Callable[[World, list[str], RolloutOptions], FleetReport]
"""Runs one rollout over `stacks` with the ports of `World`; returns the fleet's report."""


def embedded(world: World, stacks: list[str], options: RolloutOptions) -> FleetReport:
    """The default engine: the in-process `Fleet` the CLI runs."""
    fleet = Fleet(world.executor, world.store, desired=world.desired, render=world.render, gate=world.gate)
    return fleet.run(stacks, options)


def temporal(world: World, stacks: list[str], options: RolloutOptions) -> FleetReport:
    """The cluster engine: the same rollout as a Temporal workflow, a worker in this process over the
    same ports (`bench/cluster_rollout.py`, which also measures it against the embedded engine)."""
    from bench.cluster_rollout import in_process_rollout

    return in_process_rollout(world.executor, world.store, world.desired, world.render, world.gate, stacks, options)


ENGINES: dict[str, Engine] = {"embedded": embedded, "temporal": temporal}


@dataclass(frozen=True)
class CliDefaults:
    concurrency: int
    wave_size: int
    api_budget: int
    gate_timeout_s: float


def cli_defaults() -> CliDefaults:
    """What `up --all` runs with when the user passes no flags, as the CLI itself parses and sizes it."""
    from orchestrator.cli.fleet import up
    from orchestrator.ops.fleet_run import sizing_for_budget

    params = up.make_context("up", ["--all"]).params
    # One node with the whole budget (CLAWDBOT_API_BUDGET_SHARE unset), as the simulated upstream has it.
    sizing = sizing_for_budget(params["api_budget"], params["concurrency"], params["wave_size"], share=1.0)
    return CliDefaults(sizing.concurrency, sizing.wave_size, params["api_budget"], params["gate_timeout"])


# ---------------------------------------------------------------------------------------------
# The rollout


def scratch_settings(root: Path) -> Settings:
    project = root / "project"
    project.mkdir(parents=True)
    (project / "Pulumi.yaml").write_text("name: clawdbot\n")
    return Settings(
        project_dir=project,
        state_dir=root / "state",
        work_root=root / "work",
        passphrase_file=root / "pp",
        audit_log=root / "audit.jsonl",
    )


def run_rollout(engine: Engine, args: argparse.Namespace, defaults: CliDefaults, seed: int) -> dict[str, object]:
    """One 200-tenant `up` with the CLI's defaults through `engine`: budget share and 429s."""
    scale = args.time_scale
    config = ThrottleConfig(requests=defaults.api_budget, window_s=300, time_scale=scale)
    upstream = Upstream(limit=defaults.api_budget, window=config.window)
    server = upstream.serve()
    rng = random.Random(seed)
    stacks = [f"prod.t{i:03d}" for i in range(args.tenants)]
    latencies = {s: args.engine_s * scale * rng.uniform(0.7, 1.3) for s in stacks}
    low, high = args.propagation_s
    delays = {s: rng.uniform(low, high) * scale for s in stacks}
    edges = Edges(lambda s: delays[s])
    root = Path(tempfile.mkdtemp(prefix="fleet-bench-", dir=args.scratch))
    try:
        settings = scratch_settings(root)
        for stack in stacks:
            stack_file(settings.project_dir, stack).write_text(f"config: {{id: {stack}}}\n")
        inputs = FleetInputs(program_digest="p", render_digest="r")
        gate = partial(
            health.gate, timeout_s=defaults.gate_timeout_s * scale, interval_s=health.GATE_INTERVAL_S * scale
        )
        with ThrottleProxy(f"http://127.0.0.1:{server.server_address[1]}/client/v4", config) as proxy:
            client = ApiClient(proxy.port)
            simulated = SimulatedExecutor(
                latency_s=lambda stack, op: latencies[stack],
                api_calls=args.api_calls,
                api_parallel=args.api_parallel,
                call_api=client,
                health_base=edges.base,
            )
            world = World(
                executor=Propagating(simulated, edges),
                store=FileDeployedStore(settings, "clawdbot"),
                desired=lambda s: inputs.desired(settings.project_dir, s),
                render=lambda s: Rendered(f"sim-{s}", 1),
                gate=gate,
            )
            options = RolloutOptions(Operation.UP, concurrency=defaults.concurrency, wave_size=defaults.wave_size)
            started = time.monotonic()
            report = engine(world, stacks, options)
            wall = time.monotonic() - started
            stats = proxy.stats.snapshot()
    finally:
        stop(server)
        stop(edges.server)
        shutil.rmtree(root, ignore_errors=True)
    if report.counts() != {"ok": args.tenants}:
        raise SystemExit(f"rollout did not deploy every tenant: {report.counts()} ({report.halt_reason})")
    budget_rate = defaults.api_budget / config.window
    return {
        "budget_use": upstream.served / wall / budget_rate,
        "upstream_429": upstream.refused,
        "client_429": client.statuses.get(429, 0) + stats["client_429"],
        "waves": report.waves,
        "health_probes": edges.probes,
        "wall_s_real_equivalent": wall / scale,
    }


# ---------------------------------------------------------------------------------------------
# Change detection: the whole `up --all` process


@dataclass
class DecideWorld:
    """A project of N deployed, unchanged tenants and the environment of a CLI run over it."""

    settings: Settings
    env: dict[str, str]
    fresh: dict[str, DeployedRecord]


def tenant_template(root: Path) -> str:
    """One realistic stack file (salt, two encrypted secrets, two routes, a cron) for tenant t000."""
    project = ScratchProject(root, write_passphrase_file(root / "template-pp"), source=REPO_ROOT)
    tenant = synthetic_tenant(0, secret_names=("WEBHOOK_SECRET", "STRIPE_KEY"))
    tenant["routes"] = [f"shop.{tenant['zone']['name']}/*", f"api.{tenant['zone']['name']}/v1/*"]
    tenant["crons"] = ["*/15 * * * *"]
    return project.add_tenant(tenant).read_text()


def decide_world(root: Path, tenants: int) -> DecideWorld:
    settings = scratch_settings(root)
    shutil.copyfile(REPO_ROOT / "Pulumi.prod.yaml", settings.project_dir / "Pulumi.prod.yaml")
    template = tenant_template(root / "template")
    stacks = [tenant_stack(f"t{i:04d}") for i in range(tenants)]
    state_dir = settings.state_dir / ".pulumi" / "stacks" / "clawdbot"
    state_dir.mkdir(parents=True)
    for index, stack in enumerate(stacks):
        text = template.replace("t000", f"t{index:04d}")
        stack_file(settings.project_dir, stack).write_text(text)
        (state_dir / f"{stack}.json").write_text('{"version": 3}')
    write_passphrase_file(settings.passphrase_file)
    inputs = FleetInputs.compute(settings.project_dir, REPO_ROOT)
    render = bundle_renderer(settings.project_dir)
    store = FileDeployedStore(settings, "clawdbot")
    fresh = {}
    for stack in stacks:
        desired, rendered = inputs.desired(settings.project_dir, stack), render(stack)
        record = DeployedRecord(
            stack=stack,
            bundle_hash=rendered.bundle_hash,
            config_version=rendered.config_version,
            health_url=None,
            config_digest=desired.config_digest,
            program_digest=desired.program_digest,
            render_digest=desired.render_digest,
            state_fingerprint=None,
            updated_at=datetime.now(UTC),
        )
        fresh[stack] = store.put(record)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWDBOT_", "PULUMI_"))}
    clean.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's installed modules have their bytecode cached
    env = {
        **clean,
        "HOME": str(root),
        "PYTHONPATH": str(REPO_ROOT),
        "CLAWDBOT_ENV_FILE": "/dev/null",
        "CLAWDBOT_PROJECT_DIR": str(settings.project_dir),
        "CLAWDBOT_STATE_DIR": str(settings.state_dir),
        "CLAWDBOT_WORK_ROOT": str(settings.work_root),
        "CLAWDBOT_AUDIT_LOG": str(settings.audit_log),
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(settings.passphrase_file),
        "CLAWDBOT_PULUMI_ROOT": str(root / "no-pulumi-cli"),  # a run that starts the engine fails loudly
    }
    return DecideWorld(settings, env, fresh)


def set_records(world: DecideWorld, *, stale: bool) -> None:
    """Fresh records, or ones whose render digest predates a change (every bundle is rendered again)."""
    for stack, record in world.fresh.items():
        path = FileDeployedStore(world.settings, "clawdbot").paths(stack).record_file
        update = {"render_digest": "before-the-change"} if stale else {}
        path.write_text(record.model_copy(update=update).model_dump_json(indent=2))
    # The timed process syncs its batch of records (config/atomic_file.write_many_atomically), and
    # sync(2) would also flush these 1,000 writes of the bench's own set-up; a user's records were
    # written by an earlier run, long since on disk.
    os.sync()


def run_up_all(world: DecideWorld, expect_detail: str) -> float:
    """Seconds of one whole `up --all --json` process; checks it decided every tenant as expected."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "up", "--all", "--json"],
        cwd=REPO_ROOT,
        env=world.env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"up --all failed ({done.returncode}): {done.stdout[-400:]} {done.stderr[-400:]}")
    report = json.loads(done.stdout)
    details = {t["detail"] for t in report["tenants"]}
    if report["counts"] != {"unchanged": len(world.fresh)} or details != {expect_detail}:
        raise SystemExit(f"up --all decided otherwise: {report['counts']} {sorted(details)}")
    return elapsed


# ---------------------------------------------------------------------------------------------


def summary(values: list[float], digits: int = 3) -> dict[str, float]:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits)}


@contextmanager
def decide_scratch(tenants: int) -> Iterator[DecideWorld]:
    root = Path(tempfile.mkdtemp(prefix="fleet-bench-decide-"))
    try:
        yield decide_world(root, tenants)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="embedded", help="rollout engine")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every measure once")
    parser.add_argument("--tenants", type=int, default=200, help="tenants in the rollout")
    parser.add_argument("--api-calls", type=int, default=12, help="Cloudflare requests per tenant up")
    parser.add_argument("--api-parallel", type=int, default=4, help="requests in flight per stack")
    parser.add_argument("--engine-s", type=float, default=8.0, help="engine time per up, real seconds")
    parser.add_argument(
        "--propagation-s",
        type=float,
        nargs=2,
        default=(2.0, 12.0),
        metavar=("LOW", "HIGH"),
        help="real seconds after an up until its edge serves the new bundle (uniform)",
    )
    parser.add_argument("--time-scale", type=float, default=0.05, help="0.05: the 300 s window lasts 15 s")
    parser.add_argument(
        "--scratch",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the rollout's records live (default tmpfs: an fsync is not scaled, so on disk its real "
        "10 ms would weigh 1/time-scale times more against the scaled engine than it does for a user)",
    )
    parser.add_argument("--unchanged", type=int, default=1000, help="tenants in the decide/rerender runs")
    parser.add_argument(
        "--cluster-args",
        default="",
        metavar="ARGS",
        help="with --engine temporal: arguments of bench/cluster_rollout.py for the `cluster` section "
        '(e.g. "--time-scale 0.1" for its quick mode; default: real 5 s operations, ~15 min)',
    )
    parser.add_argument("--skip-cluster", action="store_true", help="with --engine temporal: no `cluster` section")
    parser.add_argument("--skip-rollout", action="store_true")
    parser.add_argument("--skip-decide", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    defaults = cli_defaults()
    engine = ENGINES[args.engine]
    runs: dict[str, list[float]] = {}
    detail: list[dict[str, object]] = []
    with decide_scratch(0 if args.skip_decide else args.unchanged) as world:
        measures: list[tuple[str, Callable[[int], None]]] = []

        def rollout(number: int) -> None:
            one = run_rollout(engine, args, defaults, seed=number)
            runs.setdefault("budget_use_defaults", []).append(float(str(one["budget_use"])))
            runs.setdefault("upstream_429", []).append(float(str(one["upstream_429"])))
            detail.append(one)

        def decide(number: int) -> None:
            set_records(world, stale=False)
            runs.setdefault("decide_1000_s", []).append(run_up_all(world, "unchanged"))

        def rerender(number: int) -> None:
            set_records(world, stale=True)
            # A change to a render input is a change to a repo module: the remembered closure goes too.
            (world.settings.work_root / CLOSURE_CACHE).unlink(missing_ok=True)
            seconds = run_up_all(world, "unchanged (re-rendered: same bundle)")
            runs.setdefault("rerender_1000_s", []).append(seconds)

        if not args.skip_rollout:
            measures.append(("rollout", rollout))
        if not args.skip_decide:
            measures += [("decide", decide), ("rerender", rerender)]
            set_records(world, stale=False)
            run_up_all(world, "unchanged")  # untimed: compiles what has no bytecode cache yet, as a first run would
        for number in range(args.rounds):
            shift = number % max(1, len(measures))
            for _, measure in measures[shift:] + measures[:shift]:
                measure(number)
    result: dict[str, object] = {key: summary(values) for key, values in runs.items()}
    if "upstream_429" in runs:
        result["upstream_429"] = {"max": int(max(runs["upstream_429"])), "runs": [int(v) for v in runs["upstream_429"]]}
    result |= {
        "rounds": args.rounds,
        "engine": args.engine,
        # The decide processes are the CLI's `up --all` (its default engine): deciding that nothing
        # changed is the same code in both engines and never reaches a worker's executor.
        "engine_of": {"rollout": args.engine, "decide": "embedded"},
        "time_scale": args.time_scale,
        "cli_defaults": vars(defaults),
        "unchanged_tenants": args.unchanged,
        "rollout_runs": detail,
        "targets": {
            "budget_use_defaults": ">= 0.9",
            "upstream_429": "0",
            "decide_1000_s": "<= 1.0",
            "rerender_1000_s": "<= 2.0",
            **({"cluster.overhead.ratio_median": "<= 1.2 (operations >= 5 s)"} if args.engine == "temporal" else {}),
        },
    }
    if args.engine == "temporal":
        from bench.cluster_rollout import cluster_measures, stop_shared

        stop_shared()
        if not args.skip_cluster:
            result["cluster"] = cluster_measures(["--tenants", str(args.tenants), *shlex.split(args.cluster_args)])
    print(json.dumps(result, indent=None if args.json else 2, default=str))
    if args.engine == "temporal":
        sys.stdout.flush()
        os._exit(0)  # temporalio/sdk-python#300: the client's runtime threads can abort the interpreter's teardown


if __name__ == "__main__":
    main()
