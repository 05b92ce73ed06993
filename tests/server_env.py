"""A control room over a scratch project, with the fleet tests' simulated executor (never the CLI)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from orchestrator.config.settings import Settings
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.health import GateResult, HealthCheck, HealthTarget
from orchestrator.fleet.changes import Rendered
from orchestrator.fleet.ports import Operation
from orchestrator.ops.scratch import ScratchProject, copy_examples, synthetic_tenant, write_passphrase_file
from orchestrator.server.app import create_app
from orchestrator.server.library import Library, RunSeams
from orchestrator.server.serve import ServeConfig
from orchestrator.server.state import AppState
from orchestrator.testing.simulated import SimulatedExecutor


def ok_gate(targets: Sequence[HealthTarget]) -> GateResult:
    return GateResult(tuple(HealthCheck(t, "ok", "ok") for t in targets))


class Valve:
    """Holds every simulated stack operation until `open()`; counts the ones waiting."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def sleep(self, _: float) -> None:
        with self._lock:
            self.waiting += 1
        self._open.wait(30)

    def open(self) -> None:
        self._open.set()

    def wait_for(self, n: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.waiting < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.waiting} of {n} operations started")
            time.sleep(0.01)


@dataclass(frozen=True)
class Template:
    """A scratch project made once (fresh secrets cost a key derivation) and copied per test."""

    root: Path
    passphrase: str
    secrets: dict[str, dict[str, str]]

    @classmethod
    def make(cls, root: Path, synthetic: int = 0) -> Template:
        passphrase = write_passphrase_file(root / "passphrase")
        if synthetic:
            project = ScratchProject(root / "project", passphrase, source=REPO_ROOT)
            for index in range(synthetic):
                project.add_tenant(synthetic_tenant(index))
        else:
            project = copy_examples(REPO_ROOT, root / "project", passphrase)
        return cls(root, passphrase, project.secrets)


@pytest.fixture(scope="session")
def examples_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return Template.make(tmp_path_factory.mktemp("examples"))


class ServerEnv:
    def __init__(
        self,
        root: Path,
        template: Template,
        *,
        config: ServeConfig | None = None,
        latency: Callable[[str, Operation], float] = lambda s, op: 0.0,
        local_edge_dir: Path | None = None,
    ) -> None:
        shutil.copytree(template.root, root, dirs_exist_ok=True)
        self.passphrase = template.passphrase
        self.secrets = template.secrets
        self.project_dir = root / "project"
        self.settings = Settings(
            project_dir=self.project_dir,
            state_dir=root / "state",
            work_root=root / "work",
            passphrase_file=root / "passphrase",
            audit_log=root / "home" / "audit.jsonl",
            local_edge_dir=local_edge_dir or root / "local-edge",
            pulumi_root=root / "no-pulumi-here",
        )
        self.valve = Valve()
        self.sim = SimulatedExecutor(latency_s=latency, sleep=self.valve.sleep)
        seams = RunSeams(
            executor=lambda settings, url: self.sim,
            gate=ok_gate,
            render=lambda project: lambda stack: Rendered(f"sim-{stack}", 1),
            throttle=False,
        )
        self.library = Library(self.settings, seams)
        self.config = config or ServeConfig(watch_interval_s=3600)
        self.app: FastAPI = create_app(self.library, self.config)
        self.state: AppState = self.app.state.control

    def token(self, name: str = "ci") -> str:
        return self.state.tokens.add(name)

    @contextmanager
    def client(self) -> Iterator[TestClient]:
        with TestClient(self.app) as client:
            yield client

    def wait_job(self, client: TestClient, headers: dict[str, str], job_id: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            body = client.get(f"/api/jobs/{job_id}", headers=headers).json()
            if body["state"] in ("succeeded", "failed", "cancelled"):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {body['state']}")
            time.sleep(0.02)


@pytest.fixture
def env(tmp_path: Path, examples_template: Template) -> ServerEnv:
    """A control room over a copy of the example tenants (import it with `examples_template`)."""
    return ServerEnv(tmp_path, examples_template)


@pytest.fixture
def client(env: ServerEnv) -> Iterator[TestClient]:
    with env.client() as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def running_server(app: FastAPI) -> Iterator[str]:
    """The app under a real uvicorn on a free loopback port, in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
