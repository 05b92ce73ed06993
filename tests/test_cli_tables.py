"""Tables are never cut when stdout is not a terminal: every table-printing command, piped.

rich 14 sizes a console that is not a terminal at 80 columns ($COLUMNS if set; rich/console.py
`Console.size`) and folds or ellipsises cells to fit (`Column.overflow` defaults to "ellipsis"):
piped, `status` and `health` printed half a URL. On a terminal the table still fits the terminal.
"""

from __future__ import annotations

import ast
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_cli_fleet import Env

import orchestrator.ops.health as ops_health
from orchestrator.cli import cli
from orchestrator.core.errors import StackError
from orchestrator.core.health import HealthCheck, HealthTarget

REPO = Path(__file__).resolve().parents[1]
CLI_DIR = REPO / "orchestrator" / "cli"
LONG_URL = "https://" + "a" * 120 + ".example.com/_edge/health"
LONG_TENANT = "t" + "0123456789" * 3 + "x"  # 32 characters, the longest tenant id


def _one_line_holds(output: str, *parts: str) -> bool:
    return any(all(part in line for part in parts) for line in output.splitlines())


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env, "COLUMNS": "80", "CLAWDBOT_ENV_FILE": os.devnull}  # a piped run in an 80-column shell
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def long_tenant_env(cli_env: dict[str, str]) -> dict[str, str]:
    project = Path(cli_env["CLAWDBOT_PROJECT_DIR"])
    text = (project / "Pulumi.prod.acme.yaml").read_text().replace("id: acme", f"id: {LONG_TENANT}")
    (project / f"Pulumi.prod.{LONG_TENANT}.yaml").write_text(text)
    return cli_env


# --- every command, its stdout a pipe --------------------------------------------------------


def test_tenants_list_piped(long_tenant_env: dict[str, str]) -> None:
    result = _run(long_tenant_env, "tenants", "list")
    assert result.returncode == 0, result.stderr
    assert _one_line_holds(result.stdout, LONG_TENANT, f"prod.{LONG_TENANT}", "never")


def test_an_empty_tenants_list_names_the_directory_it_read(cli_env: dict[str, str], tmp_path: Path) -> None:
    # Run against the wrong directory, "0 tenants" alone looked like an empty fleet.
    elsewhere = _run({**cli_env, "CLAWDBOT_PROJECT_DIR": str(tmp_path)}, "tenants", "list")
    assert elsewhere.returncode == 0 and "0 tenants" in elsewhere.stdout
    assert f"no Pulumi.prod.<tenant>.yaml in {tmp_path}: --project-dir or CLAWDBOT_PROJECT_DIR" in elsewhere.stderr
    assert _run(cli_env, "tenants", "list").stderr == ""


def test_status_piped(tmp_path: Path) -> None:
    env = Env(tmp_path)
    (env.settings.project_dir / f"Pulumi.prod.{LONG_TENANT}.yaml").write_text(f"config: {{id: {LONG_TENANT}}}\n")
    assert env.invoke("up", "--tenant", LONG_TENANT).exit_code == 0
    result = env.invoke("status", "--tenant", LONG_TENANT, "--no-health")
    assert result.exit_code == 0, result.output
    bundle = f"sim-prod.{LONG_TENANT}"[:12]
    assert _one_line_holds(result.stdout, LONG_TENANT, "+00:00", bundle, "unknown"), result.stdout


def test_health_remote_piped(cli_env: dict[str, str]) -> None:
    # No network here: the probe fails, and the reason names the whole URL.
    result = _run(cli_env, "health", "--remote", "--tenant", "acme")
    assert result.returncode == 1
    assert _one_line_holds(result.stdout, "acme", "cannot reach https://", "/_edge/health:"), result.stdout


def test_fleet_report_piped(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.sim.failures["prod.beta"] = [StackError(f"stack prod.beta (tenant beta): cannot reach {LONG_URL}")]
    result = env.invoke("up", "--tenant", "beta")
    assert result.exit_code == 1
    assert _one_line_holds(result.stdout, "beta", "failed", LONG_URL), result.stdout


def test_outputs_piped(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.sim.health_base = LONG_URL.removesuffix("/_edge/health")
    result = env.invoke("outputs", "--tenant", "acme")
    assert result.exit_code == 0, result.output
    assert _one_line_holds(result.stdout, "health_url", f"{LONG_URL.removesuffix('/_edge/health')}/acme/_edge/health")


def test_local_health_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    # The table of a running local edge; the probes themselves are tested in test_local_edge_runtime.
    target = HealthTarget("prod.acme", "acme", LONG_URL, "b" * 64, 3)
    check = HealthCheck(target, "unreachable", f"cannot reach {LONG_URL}")
    # `local health` imports its probes when it runs (so `local up` does not import rich): patch their home.
    monkeypatch.setattr(ops_health, "local_checks", lambda edge, project_dir, tenants: [check])
    result = CliRunner().invoke(cli, ["local", "health"])
    assert result.exit_code == 1
    assert _one_line_holds(result.stdout, "acme", "unreachable", LONG_URL), result.stdout


def _table_modules() -> set[str]:
    """CLI modules that build a rich Table (directly or through ops.health.health_table)."""
    found = set()
    for path in CLI_DIR.glob("*.py"):
        names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
        if {"Table", "health_table"} & names:
            found.add(path.stem)
    return found


def test_every_table_printing_module_is_covered_above() -> None:
    # A new table command must get a piped test here; so must every module printing one.
    assert _table_modules() == {"fleet", "tenants", "health", "local"}


def test_no_cli_module_sizes_its_own_console() -> None:
    # Only cli/tables.py decides the width (the fleet's stderr progress console is no table).
    for path in CLI_DIR.glob("*.py"):
        if path.name == "tables.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Console":
                keywords = {k.arg for k in node.keywords}
                assert keywords == {"stderr"}, f"{path.name}:{node.lineno} builds its own Console"


# --- and on a terminal, the terminal's width -------------------------------------------------


def test_on_a_terminal_the_table_fits_the_terminal(long_tenant_env: dict[str, str]) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 70, 0, 0))
    env = {k: v for k, v in long_tenant_env.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env["CLAWDBOT_ENV_FILE"] = os.devnull
    child = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "tenants", "list"], env=env, stdout=slave, stderr=subprocess.PIPE
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert child.wait(timeout=120) == 0
    text = b"".join(chunks).decode()
    lines = [line for line in text.replace("\r", "").splitlines() if line.strip()]
    assert lines and max(len(_strip_ansi(line)) for line in lines) <= 70


def _strip_ansi(line: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line)
