"""The demo end to end (real workerd), as a person runs it: readable steps, right outcomes, nothing left behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.local_edge import process as proc

pytestmark = pytest.mark.slow


def test_demo_walks_through_and_tears_down(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(workdir), "--config-ttl", "1"])
    assert result.exit_code == 0, result.output
    out = result.output
    for step in (
        "Bring up the local edge",
        "Fleet health",
        "signed webhook",
        "read back from acme",
        "Push a config",
        "Tear down",
        "Demo finished",
    ):
        assert step in out, step
    assert "HTTP 200" in out and '"stored":true' in out and "HTTP 401" in out
    assert re.search(r"GET / now serves v4 from kv", out)
    assert "passphrase file" in out and "never shown" in out
    assert not workdir.exists()  # scratch directory (passphrase, relay keys) removed


def test_demo_keep_leaves_no_runtime_and_no_secret_in_output(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(workdir), "--config-ttl", "1", "--keep"])
    assert result.exit_code == 0, result.output
    passphrase = (workdir / "passphrase").read_text().strip()
    keys = [p.read_text().strip() for p in (workdir / "local-edge" / "relay-keys").iterdir()]
    assert passphrase not in result.output and all(k not in result.output for k in keys)
    assert not (workdir / "local-edge" / "runtime.pid").exists()
    state = str(workdir / "local-edge")
    assert not any(_cwd(p.pid) == state for p in _ours())


def _cwd(pid: int) -> str | None:
    try:
        return str(Path(f"/proc/{pid}/cwd").resolve())
    except OSError:
        return None


def _ours() -> list[proc.Proc]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            p = proc.read_proc(int(entry.name))
            if p is not None and proc.is_ours(p):
                found.append(p)
    return found


def test_demo_refuses_a_workdir_that_holds_anything(tmp_path: Path) -> None:
    workdir = tmp_path / "precious"
    workdir.mkdir()
    (workdir / "passphrase").write_text("the real one\n")
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(workdir)])
    assert result.exit_code == 1
    assert "exists and is not empty" in result.output
    assert (workdir / "passphrase").read_text() == "the real one\n"


def test_demo_in_dispatch_mode_goes_through_the_dispatcher(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    args = ["demo", "--workdir", str(workdir), "--config-ttl", "1", "--isolation", "dispatch"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # the console wraps long lines
    assert "behind the dispatcher (dispatch mode)" in out and "isolation: dispatch" in out
    assert '(no tenant): HTTP 404 {"error":"unknown_host"}' in out
    assert '"stored":true' in out and "HTTP 401" in out and "GET / now serves v4 from kv" in out
    assert not workdir.exists()
