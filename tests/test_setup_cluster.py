"""`setup-vps.sh --worker`: a node of the cluster engine (docs/cluster.md)."""

from __future__ import annotations

from pathlib import Path

from vps_setup import UNITS, run

SYSTEM_UNITS = Path("etc/systemd/system")


def test_only_a_worker_node_gets_the_worker_unit_and_its_timers_stay_off(tmp_path: Path) -> None:
    plain, node = tmp_path / "plain", tmp_path / "node"
    single = run("--root", str(plain))
    assert single.returncode == 0, single.stderr
    assert not (plain / SYSTEM_UNITS / "clawdbot-worker.service").exists()
    assert "systemctl enable --now clawdbot-drift.timer" in single.stdout and "disable" not in single.stdout

    cluster = run("--root", str(node), "--worker")
    assert cluster.returncode == 0, cluster.stderr
    installed = node / SYSTEM_UNITS / "clawdbot-worker.service"
    assert installed.read_bytes() == (UNITS / "cluster" / "clawdbot-worker.service").read_bytes()
    assert installed.stat().st_mode & 0o777 == 0o644
    # Temporal schedules replace the timers; on every node they would refresh one shared state N times.
    for timer in ("drift", "health", "backup"):
        assert f"systemctl disable --now clawdbot-{timer}.timer" in cluster.stdout
    assert "enable --now clawdbot-drift.timer" not in cluster.stdout
    assert "enable --now clawdbot-worker.service" in cluster.stdout  # the hint, not run
    assert "skipped (target root): systemctl enable --now clawdbot-worker" not in cluster.stdout


def test_the_worker_flag_reaches_the_users_units_too(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    assert run("--root", str(root), "--worker", "--user", "edgeops").returncode == 0
    text = (root / SYSTEM_UNITS / "clawdbot-worker.service").read_text()
    assert "User=edgeops\n" in text and "Group=edgeops\n" in text


def test_help_names_the_worker_flag() -> None:
    result = run("--help")
    assert result.returncode == 0 and "--worker" in result.stdout and "docs/cluster.md" in result.stdout
