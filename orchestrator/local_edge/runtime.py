"""`LocalEdge`: start, inspect and stop the one background runtime that serves every local tenant.

`up` hands the runner (node, runner.mjs) its plan on stdin and waits until the runner writes
`runtime.json`, which it does only once every tenant is seeded and serving. `status` trusts
nothing on disk alone: the runner must be alive and the runtime must answer the control worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.config.atomic_file import write_atomically
from orchestrator.core.contract import WORKER_SRC, contract
from orchestrator.core.dispatch import dispatch_settings
from orchestrator.core.model import PlatformSpec
from orchestrator.local_edge import process, sizing
from orchestrator.local_edge.client import ControlClient, EdgeClient
from orchestrator.local_edge.deploy import PreparedTenant
from orchestrator.local_edge.errors import LocalEdgeError, NotRunningError
from orchestrator.local_edge.keys import control_token
from orchestrator.local_edge.layout import StateLayout
from orchestrator.local_edge.listen import check_listenable
from orchestrator.local_edge.plan import dispatch_plan, runtime_plan, tenant_plan

RUNNER = process.RUNNER_SCRIPT
MINIFLARE_PACKAGE = WORKER_SRC / "node_modules" / "miniflare" / "package.json"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
LOG_TAIL_ON_FAILURE = 20
BASE_TIMEOUT_S = 120.0
TIMEOUT_PER_TENANT_S = 0.5
"""A 200-tenant start took 77 s on two loaded cores (the README's bench): the default grows with N."""
# Only what node needs: the caller's environment may hold PULUMI_CONFIG_PASSPHRASE or API tokens.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "NODE_EXTRA_CA_CERTS")

Progress = Callable[[str], None]


class _Info(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class BindingInfo(_Info):
    name: str
    type: str
    target: str | None


class ModuleInfo(_Info):
    name: str
    sha256: str


class MigrationInfo(_Info):
    applied: list[str]
    skipped: list[str]


class TenantInfo(_Info):
    tenant: str
    worker: str
    hostnames: list[str]
    bundle_hash: str
    config_version: int
    routes: list[str]
    kv_namespace: str
    d1_database: str
    bindings: list[BindingInfo]
    modules: list[ModuleInfo]
    main_module: str
    compatibility_date: str
    compatibility_flags: list[str]
    kv_keys: list[str]
    migrations: MigrationInfo


class RuntimeInfo(_Info):
    """`runtime.json`: what the runner started (never a secret value)."""

    pid: int
    url: str
    host: str
    port: int
    control_worker: str
    started_at: str
    runtime_ready_ms: int
    ready_ms: int
    config_ttl_seconds: int
    tenants: list[TenantInfo]
    isolation: Literal["workers", "dispatch"] = "workers"

    def tenant(self, tenant: str) -> TenantInfo:
        for info in self.tenants:
            if info.tenant == tenant:
                return info
        running = ", ".join(t.tenant for t in self.tenants) or "none"
        raise LocalEdgeError(f"tenant {tenant!r} is not running in the local edge (running: {running})")


State = Literal["running", "starting", "dead", "stopped"]


@dataclass(frozen=True)
class Status:
    state: State
    reason: str
    pid: int | None = None
    info: RuntimeInfo | None = None
    workerd_rss: int | None = None


def default_timeout(tenants: int) -> float:
    """Seconds `up` waits for the runtime by default: 120 s plus 0.5 s per tenant."""
    return BASE_TIMEOUT_S + TIMEOUT_PER_TENANT_S * tenants


class LocalEdge:
    """The local runtime whose files live in `state_dir`."""

    def __init__(self, state_dir: Path, *, node: str = "node") -> None:
        self.layout = StateLayout(state_dir)
        self.node = node
        self._child: subprocess.Popen[bytes] | None = None

    # --- reading state ----------------------------------------------------------------------

    def _pid(self) -> int | None:
        try:
            text = self.layout.pid_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def _info(self) -> RuntimeInfo | None:
        try:
            return RuntimeInfo.model_validate_json(self.layout.ready_file.read_bytes())
        except FileNotFoundError:
            return None
        except ValidationError:
            raise LocalEdgeError(
                f"{self.layout.ready_file}: not a runtime file this version understands; "
                "run `local down` and `local up`"
            ) from None

    def _reap(self) -> None:
        # A runner this very process started stays a zombie until waited for.
        if self._child is not None and self._child.poll() is not None:
            self._child = None

    def status(self) -> Status:
        self._reap()
        pid = self._pid()
        if pid is None:
            return Status("stopped", "not started (no runtime.pid)")
        info = self._info()
        state_dir = self.layout.root
        if not process.runner_alive(pid, state_dir):
            left = process.workerd_pids(pid, state_dir)
            orphan = f"; its workerd (pid {', '.join(map(str, left))}) is still running" if left else ""
            return Status("dead", f"runner process {pid} is gone{orphan}; `local up` restarts it", pid, info)
        if info is None or info.pid != pid:
            return Status("starting", f"runner process {pid} is starting (no runtime.json yet)", pid)
        rss = sum(process.rss_bytes(p) or 0 for p in process.workerd_pids(pid, state_dir)) or None
        try:
            self._control(info).ping()
        except LocalEdgeError:
            return Status(
                "dead",
                f"runner process {pid} is alive but the runtime does not answer on port {info.port}; "
                "`local up` restarts it",
                pid,
                info,
                rss,
            )
        return Status("running", f"{len(info.tenants)} tenant(s) serving at {info.url}", pid, info, rss)

    def running(self) -> RuntimeInfo:
        """The runtime's info, or NotRunningError saying why not."""
        status = self.status()
        if status.state != "running" or status.info is None:
            raise NotRunningError(f"local edge is not running: {status.reason}")
        return status.info

    def _control(self, info: RuntimeInfo) -> ControlClient:
        return ControlClient(EdgeClient(info.host, info.port), info.control_worker, control_token(self.layout))

    def control(self) -> ControlClient:
        return self._control(self.running())

    def edge_client(self) -> EdgeClient:
        info = self.running()
        return EdgeClient(info.host, info.port)

    # --- lifecycle ----------------------------------------------------------------------------

    def check_can_start(self, host: str, port: int) -> None:
        """Refuse at once what `up` would refuse late: a runtime already running, a port taken.

        Cheap, so the CLI asks before rendering and decrypting every tenant. A dead runtime's
        workerd may still hold the port: `up` stops it first, so only `up` checks the port then.
        """
        status = self.status()
        _refuse_if_running(status)
        if status.state == "stopped":
            check_listenable(host, port)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise up/down/push-config on this state directory (a second caller fails at once)."""
        self.layout.ensure()
        fd = os.open(self.layout.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LocalEdgeError(
                    f"another local edge command is running on {self.layout.root}; wait for it to finish"
                ) from None
            yield
        finally:
            os.close(fd)

    def _check_tools(self) -> str:
        node = shutil.which(self.node)
        if node is None:
            raise LocalEdgeError(f"node ({self.node}) is not on PATH; install Node.js 20+ (scripts/demo.sh does)")
        if not MINIFLARE_PACKAGE.is_file():
            raise LocalEdgeError(
                f"Miniflare is not installed in {WORKER_SRC}; run `npm ci` there (scripts/demo.sh does)"
            )
        return node

    def _clear(self, pid: int | None) -> None:
        if pid is not None:
            process.stop_group(pid, state_dir=self.layout.root, grace_s=5.0)
        self.layout.ready_file.unlink(missing_ok=True)
        self.layout.pid_file.unlink(missing_ok=True)

    def up(
        self,
        tenants: Sequence[PreparedTenant],
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        config_ttl_seconds: int | None = None,
        timeout_s: float | None = None,
        progress: Progress | None = None,
        platform: PlatformSpec | None = None,
        memory_check: bool = True,
    ) -> RuntimeInfo:
        """Start the runtime with these tenants; recovers a dead one, refuses to start twice.

        Dispatch-mode bundles need `platform` (its plans and names): they run behind the real
        dispatch and outbound Workers, reachable only through the dispatcher, as on Cloudflare.
        `timeout_s` defaults to `default_timeout(len(tenants))`; `memory_check` refuses a start
        this machine has no memory for (sizing.check_memory) before anything runs.
        """
        say = progress or (lambda _message: None)
        if not tenants:
            raise LocalEdgeError("no tenants to run")
        if memory_check:
            sizing.check_memory(len(tenants), say=say)
        wait_s = default_timeout(len(tenants)) if timeout_s is None else timeout_s
        dispatch = None
        if any(t.bundle.isolation == "dispatch" for t in tenants):
            if platform is None or platform.isolation != "dispatch":
                raise LocalEdgeError("dispatch-mode tenants need the platform spec in dispatch mode")
            dispatch = dispatch_plan(
                [t.bundle for t in tenants], dispatch_settings(platform), platform.compatibility_date.isoformat()
            )
        with self.locked():
            status = self.status()
            _refuse_if_running(status)
            if status.state == "dead":
                say(f"cleaning up after a dead runtime: {status.reason}")
            self._clear(status.pid)
            check_listenable(host, port)
            node = self._check_tools()
            plans = [
                tenant_plan(
                    t.bundle,
                    relay_key_b64=t.relay_key_b64,
                    kv_values=t.kv_values,
                    config_ttl_seconds=config_ttl_seconds,
                    egress=tuple(t.spec.egress),
                )
                for t in tenants
            ]
            plan = runtime_plan(
                plans,
                host=host,
                port=port,
                kv_persist=self.layout.kv_dir,
                d1_persist=self.layout.d1_dir,
                ready_file=self.layout.ready_file,
                token=control_token(self.layout),
                contract=contract(),
                config_ttl_seconds=config_ttl_seconds,
                dispatch=dispatch,
            )
            mode = " behind the dispatcher (dispatch mode)" if dispatch else ""
            where = f"{host}:{port}" if port else f"a free port of {host}"
            say(f"starting workerd (Miniflare) with {len(plans)} tenant(s){mode} on {where}")
            return self._spawn(node, plan.model_dump_json().encode(), wait_s, say)

    def _spawn(self, node: str, plan: bytes, timeout_s: float, say: Progress) -> RuntimeInfo:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env["CLAWDBOT_WORKER_SRC"] = str(WORKER_SRC)  # the runner's tools and Miniflare, checkout or installed
        log_fd = os.open(self.layout.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            child = subprocess.Popen(
                [node, str(RUNNER)],
                stdin=subprocess.PIPE,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                cwd=self.layout.root,
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(log_fd)
        self._child = child
        write_atomically(self.layout.pid_file, f"{child.pid}\n")
        assert child.stdin is not None
        try:
            child.stdin.write(plan)
            child.stdin.close()
        except BrokenPipeError:
            pass  # the runner died at once; the wait below reports its log
        try:
            info = self._wait_ready(child, timeout_s)
        except BaseException:
            self._clear(child.pid)
            child.wait(timeout=5)
            self._child = None
            raise
        say(f"runtime ready in {info.ready_ms} ms (workerd up after {info.runtime_ready_ms} ms)")
        return info

    def _wait_ready(self, child: subprocess.Popen[bytes], timeout_s: float) -> RuntimeInfo:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = self._info()
            if info is not None and info.pid == child.pid:
                return info
            if child.poll() is not None:
                raise LocalEdgeError(
                    f"the local runtime exited (status {child.returncode}) before it was ready; last log lines "
                    f"from {self.layout.log_file}:\n{self.log_tail(LOG_TAIL_ON_FAILURE)}"
                )
            time.sleep(0.05)
        raise LocalEdgeError(
            f"the local runtime was not ready after {timeout_s:.0f} s (stopped it; a slow or loaded machine "
            f"needs a longer --timeout); last log lines from {self.layout.log_file}:\n"
            f"{self.log_tail(LOG_TAIL_ON_FAILURE)}"
        )

    def down(self, *, grace_s: float = 10.0) -> bool:
        """Stop the runtime; True when something was running. Persisted KV/D1 data stays."""
        with self.locked():
            self._reap()
            pid = self._pid()
            stopped = pid is not None and process.stop_group(pid, state_dir=self.layout.root, grace_s=grace_s)
            if self._child is not None:
                self._child.wait(timeout=grace_s)
                self._child = None
            self.layout.ready_file.unlink(missing_ok=True)
            self.layout.pid_file.unlink(missing_ok=True)
            return stopped

    def log_tail(self, lines: int) -> str:
        try:
            with open(self.layout.log_file, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 256 * 1024))
                text = handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log yet)"
        return "\n".join(text.splitlines()[-lines:])


def _refuse_if_running(status: Status) -> None:
    if status.state in ("running", "starting"):
        raise LocalEdgeError(f"local edge is already running ({status.reason}); run `local down` first")
