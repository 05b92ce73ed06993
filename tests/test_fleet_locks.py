"""Crash recovery: stale locks and pending operations in a file backend laid out as Pulumi does."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core.errors import FleetLockError
from orchestrator.engine.locks import clear_stale, fleet_lease, inspect, pid_alive, state_key

PROJECT, STACK = "clawdbot", "prod.acme"
HERE = socket.gethostname()


WHEN = "2025-01-01T10:00:00.123456789Z"


def write_lock(state: Path, name: str, pid: int, host: str = HERE, when: str = WHEN) -> Path:
    directory = state / ".pulumi" / "locks" / "organization" / PROJECT / STACK
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"pid": pid, "username": "ops", "hostname": host, "timestamp": when}))
    return path


def write_checkpoint(state: Path, pending: list[dict[str, object]], gz: bool = False) -> Path:
    directory = state / ".pulumi" / "stacks" / PROJECT
    directory.mkdir(parents=True, exist_ok=True)
    doc = {"version": 3, "checkpoint": {"stack": STACK, "latest": {"resources": [], "pending_operations": pending}}}
    raw = json.dumps(doc).encode()
    path = directory / (f"{STACK}.json.gz" if gz else f"{STACK}.json")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_nothing_left_behind_is_clean(tmp_path: Path) -> None:
    report = inspect(tmp_path, PROJECT, STACK, tenant_flag="--tenant acme")
    assert report.clean and not report.blocked and report.advice == ()


def test_lock_of_a_dead_local_process_is_stale_and_cleared(tmp_path: Path) -> None:
    path = write_lock(tmp_path, "a", dead_pid())
    report = inspect(tmp_path, PROJECT, STACK, tenant_flag="--tenant acme")
    assert [lock.where for lock in report.stale_locks] == [str(path)]
    assert not report.blocked
    assert [lock.where for lock in clear_stale(tmp_path, report)] == [str(path)]
    assert not path.exists()


def test_lock_of_a_live_process_is_never_touched(tmp_path: Path) -> None:
    path = write_lock(tmp_path, "a", 4242)
    report = inspect(tmp_path, PROJECT, STACK, tenant_flag="--tenant acme", alive=lambda pid: True)
    assert report.blocked and not report.stale_locks
    assert "ops@" in report.advice[0] and "pid 4242" in report.advice[0]
    assert "python -m orchestrator recover --tenant acme" in report.advice[0]
    assert clear_stale(tmp_path, report) == [] and path.exists()


def test_holder_that_came_back_to_life_is_not_unlocked(tmp_path: Path) -> None:
    path = write_lock(tmp_path, "a", 4242)
    report = inspect(tmp_path, PROJECT, STACK, tenant_flag="--tenant acme", alive=lambda pid: False)
    assert report.stale_locks
    # pid reused between inspect and clear: the re-check keeps the lock.
    assert clear_stale(tmp_path, report, alive=lambda pid: True) == [] and path.exists()


def test_foreign_host_lock_tells_the_operator_what_to_delete(tmp_path: Path) -> None:
    path = write_lock(tmp_path, "a", 1, host="other-vps")
    report = inspect(tmp_path, PROJECT, STACK, tenant_flag="--tenant acme", alive=lambda pid: False)
    assert report.blocked and not report.stale_locks
    assert str(path) in report.advice[0] and "another host" in report.advice[0]
    assert "probably stale" in report.advice[0]  # 2025-01-01 is older than the lease


def test_unreadable_lock_is_named_and_blocks(tmp_path: Path) -> None:
    path = write_lock(tmp_path, "a", 1)
    path.write_text("{garbage")
    report = inspect(tmp_path, PROJECT, STACK, tenant_flag="--tenant acme")
    assert report.blocked and report.unreadable == (str(path),)
    assert str(path) in report.advice[0]


@pytest.mark.parametrize("gz", [False, True])
def test_pending_operations_produce_exact_commands(tmp_path: Path, gz: bool) -> None:
    urn = "urn:pulumi:prod.acme::clawdbot::cloudflare:index/workersKvNamespace:WorkersKvNamespace::acme-kv"
    write_checkpoint(
        tmp_path,
        [
            {
                "resource": {"urn": urn, "type": "cloudflare:index/workersKvNamespace:WorkersKvNamespace"},
                "type": "creating",
            },
            {"resource": {"urn": urn.replace("acme-kv", "acme-worker"), "type": "x"}, "type": "updating"},
        ],
        gz=gz,
    )
    assert state_key(tmp_path, PROJECT, STACK) == f".pulumi/stacks/{PROJECT}/{STACK}.json" + (".gz" if gz else "")
    report = inspect(tmp_path, PROJECT, STACK, tenant_flag="--tenant acme")
    assert [p.kind for p in report.pending] == ["creating", "updating"]
    assert not report.blocked
    assert "acme-kv" in report.advice[0]
    assert "python -m orchestrator refresh --tenant acme --clear-pending-creates" in report.advice[0]
    assert "refresh --tenant acme`" in report.advice[1]


def test_fleet_lease_excludes_a_second_run_and_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "work" / "fleet.lock"
    with fleet_lease(path, holder="ops@vps", command="up --all") as info:
        assert info.command == "up --all"
        with (
            pytest.raises(FleetLockError, match=r"up --all by ops@vps \(pid \d+\)"),
            fleet_lease(path, holder="other", command="destroy"),
        ):
            pass
    with fleet_lease(path, holder="other", command="destroy") as info:
        assert info.holder == "other"


def test_fleet_lease_dies_with_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "fleet.lock"
    code = (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    with fleet_lease(path, holder="me", command="up"):
        pass


def test_pid_alive() -> None:
    import os

    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    assert not pid_alive(0)
