"""Simulated cluster nodes for the Temporal engine's tests: worker processes over one shared world."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.cluster.devserver import die_with_parent
from orchestrator.fleet.audit import AuditLog
from orchestrator.fleet.ports import Operation
from orchestrator.fleet.report import FleetReport, RolloutOptions
from orchestrator.testing.cluster import RolloutRequest, WorldSpec, embedded_fleet

REPO = Path(__file__).resolve().parents[1]


def make_world(root: Path, address: str, tenants: int, **spec: object) -> tuple[WorldSpec, list[str]]:
    """A project of `tenants` stack files (a unique project name, so workflow ids never meet across tests)."""
    project = root / "project"
    project.mkdir(parents=True)
    (project / "Pulumi.yaml").write_text(f"name: sim-{uuid.uuid4().hex[:8]}\n")
    (project / "Pulumi.prod.yaml").write_text("config: {}\n")
    stacks = [f"prod.t{i:02d}" for i in range(tenants)]
    for stack in stacks:
        (project / f"Pulumi.{stack}.yaml").write_text("config: {v: v1}\n")
    world = WorldSpec(address=address, task_queue=f"test-{uuid.uuid4().hex[:8]}", root=root, **spec)
    (root / "world.json").write_text(world.model_dump_json())
    return world, stacks


class Nodes:
    """Worker processes (`python -m orchestrator.testing cluster-worker`) over one world."""

    def __init__(self, world: WorldSpec, env: dict[str, str] | None = None) -> None:
        self.world = world
        self.env = env or {}
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, count: int) -> list[subprocess.Popen[str]]:
        started = []
        for _ in range(count):
            proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrator.testing", "cluster-worker", str(self.world.root / "world.json")],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO), **self.env},
                stdout=subprocess.PIPE,
                stderr=open(self.world.root / f"worker-{len(self.procs)}.log", "w"),  # noqa: SIM115
                text=True,
                preexec_fn=die_with_parent,
            )
            self.procs.append(proc)
            started.append(proc)
        for proc in started:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            line = proc.stdout.readline() if ready else ""
            assert line.startswith("ready"), f"worker {proc.pid} did not start: {line!r}"
        return started

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextmanager
def nodes(world: WorldSpec, count: int, env: dict[str, str] | None = None) -> Iterator[Nodes]:
    """`count` worker processes over `world` (with `env` added to theirs), stopped on the way out."""
    group = Nodes(world, env)
    try:
        group.start(count)
        yield group
    finally:
        group.stop()


def rollout_args(stacks: Sequence[str], options: RolloutOptions) -> list[str]:
    """The CLI's arguments for `options` (the fields a test varies)."""
    args = [options.operation.value, "--engine", "temporal", "--json", "--concurrency", str(options.concurrency)]
    for stack in stacks:
        args += ["--tenant", stack.removeprefix("prod.")]
    if options.operation is Operation.UP:
        args += ["--wave-size", str(options.wave_size), "--gate-timeout", "5"]
        args += ["--canary", options.canary.removeprefix("prod.")] if options.canary else []
        args += ["--continue-on-error"] if options.continue_on_error else []
        args += ["--rollback"] if options.rollback else []
        args += ["--force"] if options.force else []
    return args


def start_cli_rollout(
    world: WorldSpec, stacks: Sequence[str], options: RolloutOptions, *, lease_s: float = 30.0
) -> subprocess.Popen[str]:
    """`python -m orchestrator <op> --engine temporal --json` against the world's cluster, in its own
    process: the Temporal client's runtime threads can abort an interpreter's exit (temporalio/sdk-python#300),
    which the CLI avoids and pytest would not."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CLAWDBOT_", "PULUMI_"))},
        "HOME": str(world.root / "home"),
        "PYTHONPATH": str(REPO),
        "CLAWDBOT_ENV_FILE": os.devnull,
        "CLAWDBOT_PROJECT_DIR": str(world.root / "project"),
        "CLAWDBOT_TEMPORAL_ADDRESS": world.address,
        "CLAWDBOT_TEMPORAL_TASK_QUEUE": world.task_queue,
        "CLAWDBOT_TEMPORAL_LEASE_S": str(lease_s),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *rollout_args(stacks, options)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )


@dataclass(frozen=True)
class CliRun:
    code: int
    report: dict[str, Any]
    stderr: str


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> CliRun:
    out, err = proc.communicate(timeout=timeout)
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON report (exit {proc.returncode}): {out[-2000:]} {err[-2000:]}") from None
    return CliRun(proc.returncode, report, err)


def run_cluster(world: WorldSpec, stacks: Sequence[str], options: RolloutOptions, **kw: float) -> CliRun:
    return finish(start_cli_rollout(world, stacks, options, **kw))


def run_embedded(world: WorldSpec, stacks: Sequence[str], options: RolloutOptions) -> FleetReport:
    return embedded_fleet(world, AuditLog(world.settings().audit_log, who="test@host")).run(stacks, options)


def comparable(report: FleetReport | dict[str, Any]) -> dict[str, Any]:
    """A report without what differs between two honest runs: timings."""
    data = dict(report.as_dict() if isinstance(report, FleetReport) else report)
    data.pop("duration_s")
    data["tenants"] = [{k: v for k, v in t.items() if k != "duration_s"} for t in data["tenants"]]
    return data


def run_direct(world: WorldSpec, stacks: Sequence[str], options: RolloutOptions, *, lease_s: float = 30.0) -> CliRun:
    """A rollout with any options (`python -m orchestrator.testing cluster-rollout`), in its own process."""
    request = RolloutRequest(stacks=tuple(stacks), options=options, lease_s=lease_s)
    path = world.root / f"request-{uuid.uuid4().hex[:6]}.json"
    path.write_text(request.model_dump_json())
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.testing", "cluster-rollout", str(world.root / "world.json"), str(path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    return finish(proc)
