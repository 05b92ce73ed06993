"""The demo end to end (real workerd), as a person runs it: readable steps, right outcomes, nothing left behind."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config import key_cache
from orchestrator.core.contract import REPO_ROOT
from orchestrator.local_edge import process as proc
from orchestrator.local_edge.errors import LocalEdgeError
from orchestrator.ops.demo import DemoOptions, run_demo
from orchestrator.ops.scratch import PROJECT_FILES

pytestmark = pytest.mark.slow


def test_demo_walks_through_and_tears_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The key cache on (as for a person), and every key the demo puts in the kernel keyring noted.
    monkeypatch.delenv(key_cache.ENV, raising=False)
    cached: list[bytes] = []
    store = key_cache.store

    def noting(passphrase: str, salt: bytes, iterations: int, key: bytes) -> bool:
        kept = store(passphrase, salt, iterations, key)
        if kept:
            cached.append(key_cache.description(salt, iterations))
        return kept

    monkeypatch.setattr(key_cache, "store", noting)
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(workdir), "--config-ttl", "1"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "on a free port of 127.0.0.1" in " ".join(out.split())
    # Not a terminal (a CI log, `| tee`): notes and the health table's cells are never folded at 80 columns.
    lines = out.splitlines()
    assert any("secrets WEBHOOK_SECRET, STRIPE_KEY (random, never shown)" in line for line in lines), out
    assert any("acme" in line and "ok (config v3 from kv)" in line for line in lines), out
    # Its scratch passphrase is gone, so are the stack keys derived from it (where a keyring took them).
    assert all(key_cache._KEYRING.search(description) is None for description in cached), cached
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


def test_the_demo_needs_example_tenants_and_says_so_before_making_anything(tmp_path: Path) -> None:
    # An installed package carries Pulumi.yaml and the platform stack, not the example tenants.
    package = tmp_path / "assets"
    package.mkdir()
    for name in PROJECT_FILES:
        shutil.copyfile(REPO_ROOT / name, package / name)
    workdir = tmp_path / "demo"
    with pytest.raises(LocalEdgeError, match=r"example tenants of a clone .* `bash scripts/demo.sh`"):
        run_demo(DemoOptions(workdir=workdir, source=package))
    assert not workdir.exists()
