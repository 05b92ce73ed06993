"""The CLI's exit statuses, as the README's table promises: 0 ok, 1 failure, 2 usage, 130 Ctrl-C.

Every failure is one `Error:` line (or one JSON object on stdout with `--json`), never a traceback.
"""

from __future__ import annotations

import errno
import json
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from orchestrator.cli.errors import INTERRUPTED, EdgeGroup
from orchestrator.cli.local import STATUS_EXIT

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def test_ok_is_0(env: dict[str, str]) -> None:
    assert _cli(env, "tenants", "list").returncode == 0


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["tenants", "show", "nope"], ["status", "--all", "--tenant", "acme"], ["plan"]],
    ids=" ".join,
)
def test_usage_errors_are_2_without_a_traceback(env: dict[str, str], args: list[str]) -> None:
    result = _cli(env, *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_domain_error_is_1_and_one_error_line(env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "Pulumi.prod.broken.yaml"
    broken.write_text("config:\n  clawdbot:tenant: {id: broken}\n")
    result = _cli(env, "plan", "--config", str(broken))
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.strip()][-1].startswith("Error: ")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_with_json_errors_are_one_json_object_on_stdout(env: dict[str, str]) -> None:
    result = _cli(env, "status", "--all", "--tenant", "acme", "--json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["exit_code"] == 2 and "--tenant" in document["error"] and "--all" in document["error"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(errno.EROFS, "Read-only file system", "/srv/project/Pulumi.prod.acme.yaml"), "read-only file system"),
        (OSError(errno.ENOSPC, "No space left on device", "/var/lib/clawdbot/audit.jsonl"), "no space left"),
        (PermissionError(errno.EACCES, "Permission denied", "/etc/clawdbot/passphrase"), "permission denied"),
    ],
    ids=["read-only", "disk-full", "permission-denied"],
)
def test_os_errors_are_one_line_naming_the_file(error: OSError, expected: str) -> None:
    @click.group(cls=EdgeGroup)
    def group() -> None: ...

    @group.command()
    def write() -> None:
        raise error

    result = CliRunner().invoke(group, ["write"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == f"Error: {str(error.strerror).lower()}: {error.filename}"
    assert expected in result.output
    assert not isinstance(result.exception, OSError)


def test_a_real_os_error_from_a_command_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = _cli({**env, "CLAWDBOT_AUDIT_LOG": str(blocker / "audit.jsonl")}, "tenants", "remove", "globex", "--yes")
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode != 0:  # removal refused or audit unwritable: either way a single error line
        assert result.returncode in (1, 2)
        assert [line for line in result.stderr.splitlines() if line.startswith("Error: ")]


_READ_SYSCALL = {"x86_64": 0, "aarch64": 63}
"""read(2)'s number: arch/x86/entry/syscalls/syscall_64.tbl; include/uapi/asm-generic/unistd.h (arm64)."""


def _wait_until_reading_stdin(pid: int, timeout: float = 90) -> None:
    """Until the process sits in read(0, ...): /proc/PID/syscall is "NR ARG0 ..." while it blocks
    in a system call (proc(5)). A fixed sleep sent the signal during start-up on a loaded machine."""
    number = _READ_SYSCALL.get(platform.machine())
    syscall = Path(f"/proc/{pid}/syscall")
    if number is None or not syscall.exists():
        time.sleep(3)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fields = syscall.read_text().split()
        except OSError:  # gone, or not ours to read
            return
        if fields[:2] == [str(number), "0x0"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never blocked reading stdin within {timeout} s")


def test_ctrl_c_in_a_running_command_is_130_without_a_traceback(env: dict[str, str]) -> None:
    secrets = Path(env["HOME"]) / ".clawdbot"
    secrets.mkdir(mode=0o700)
    (secrets / "passphrase").write_text("a passphrase only this test knows\n")
    (secrets / "passphrase").chmod(0o600)
    stack = Path(env["CLAWDBOT_PROJECT_DIR"]) / "Pulumi.prod.acme.yaml"
    kept = [line for line in stack.read_text().splitlines() if not line.startswith("encryptionsalt:")]
    stack.write_text("\n".join(kept) + "\n")  # a salt whose passphrase nobody has would fail first
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "secrets", "set", "acme", "WEBHOOK_SECRET"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_until_reading_stdin(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == INTERRUPTED, err
    assert "Traceback" not in err and "Aborted!" not in err


def test_ctrl_c_while_python_loads_the_cli_is_130(env: dict[str, str]) -> None:
    """An interrupt during the imports at start-up used to print a KeyboardInterrupt traceback."""
    probe = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'orchestrator.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from orchestrator.__main__ import run\n"
        "run()\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == INTERRUPTED and "Traceback" not in result.stderr


def test_local_status_3_is_stopped_and_the_readme_table_names_every_code(env: dict[str, str], tmp_path: Path) -> None:
    """Issue 12 item 8: `local status` uses 3 for stopped; documented in the one table, not folded."""
    stopped = _cli({**env, "CLAWDBOT_LOCAL_EDGE_DIR": str(tmp_path / "edge")}, "local", "status")
    assert stopped.returncode == STATUS_EXIT["stopped"] == 3, stopped.stderr
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("### Exit codes") :].split("\n\n")[1]
    documented = {int(row.split("|")[1]) for row in table.splitlines()[2:]}
    assert documented == {0, 1, 2, *STATUS_EXIT.values(), INTERRUPTED}


UNKNOWN_TENANT_COMMANDS = [
    ["secrets", "set", "ghost", "WEBHOOK_SECRET"],
    ["secrets", "rotate", "ghost"],
    ["secrets", "unset", "ghost", "WEBHOOK_SECRET"],
    ["secrets", "list", "ghost"],
    ["secrets", "import", "ghost"],
    ["secrets", "adopt", "ghost"],
    ["health", "--tenant", "ghost"],
    ["health", "--local", "--tenant", "ghost"],
    ["local", "up", "ghost"],
    ["local", "health", "--tenant", "ghost"],
    ["local", "push-config", "ghost"],
    ["tenants", "show", "ghost"],
    *(
        [command, "--tenant", "acme", "--tenant", "ghost"]
        for command in ("preview", "up", "refresh", "destroy", "drift", "status", "recover")
    ),
    ["outputs", "--tenant", "ghost"],
]


@pytest.mark.parametrize("args", UNKNOWN_TENANT_COMMANDS, ids=" ".join)
def test_an_unknown_tenant_is_a_usage_error_everywhere(env: dict[str, str], args: list[str]) -> None:
    """Every command that takes a tenant goes through the one selection (config/tenant_config.py)."""
    project = Path(env["CLAWDBOT_PROJECT_DIR"])
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    result = _cli(env, *args, stdin='{"WEBHOOK_SECRET": "a value nobody may see"}\n')
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: unknown tenant 'ghost': no stack file Pulumi.prod.ghost.yaml in {project} (registered: acme, globex)"
    ], result.stderr
    assert "Traceback" not in result.stderr and "a value nobody may see" not in result.stdout + result.stderr
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before


@pytest.mark.parametrize("args", [["status", "--tenant", "ghost"], ["secrets", "adopt", "ghost"]], ids=" ".join)
def test_an_unknown_tenant_with_json_is_one_json_usage_error(env: dict[str, str], args: list[str]) -> None:
    document = json.loads(_cli(env, *args, "--json").stdout)
    assert document["exit_code"] == 2 and document["error"].startswith("unknown tenant 'ghost': no stack file")
