"""`backup …` through click, against moto's S3 server on 127.0.0.1, with the real KDF cost."""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner, Result

import orchestrator.ops.state_backup as state_backup
from orchestrator.backup.crypto import KdfParams
from orchestrator.backup.marker import read_marker
from orchestrator.backup.repository import BackupRepository
from orchestrator.cli.backup import backup
from orchestrator.engine.locks import fleet_lease
from orchestrator.fleet.audit import read_events

BACKUP_PASS = "backup passphrase kept off the box"
AWS_SECRET = "moto-secret-key-value"
FAST_KDF = KdfParams(n=2**10)


@pytest.fixture
def vps(tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A VPS layout in tmp_path, wired through the CLAWDBOT_* environment."""
    home = tmp_path / "home"
    (home / "state" / ".pulumi").mkdir(parents=True)
    (home / "state").chmod(0o700)
    (home / "state" / ".pulumi" / "meta.yaml").write_text("version: 1\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: clawdbot\n")
    (project / "Pulumi.prod.acme.yaml").write_text("config: {}\n")
    for name, content in (("passphrase", "state pass"), ("backup-passphrase", BACKUP_PASS)):
        (home / name).write_text(content + "\n")
        (home / name).chmod(0o600)
    bucket = f"cli-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    env = {
        "PROJECT_DIR": project,
        "STATE_DIR": home / "state",
        "PASSPHRASE_FILE": home / "passphrase",
        "BACKUP_PASSPHRASE_FILE": home / "backup-passphrase",
        "BACKUP_MARKER": home / "last-backup.json",
        "WORK_ROOT": home / "work",
        "R2_ENDPOINT": endpoint,
        "R2_BUCKET": bucket,
    }
    for key, value in env.items():
        monkeypatch.setenv(f"CLAWDBOT_{key}", str(value))
    return home


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Create backups at a low scrypt cost, passed explicitly; reading takes the cost from each header."""
    monkeypatch.setattr(state_backup, "BackupRepository", functools.partial(BackupRepository, kdf=FAST_KDF))


def run(*args: str) -> Result:
    result = CliRunner().invoke(backup, list(args), catch_exceptions=False)
    assert BACKUP_PASS not in result.output
    assert AWS_SECRET not in result.output
    return result


def test_create_list_verify_restore(vps: Path, tmp_path: Path) -> None:
    # At the production scrypt cost (N=2^17), end to end.
    created = run("create")
    assert created.exit_code == 0, created.output
    assert "created state backup" in created.output and "3 files" in created.output
    marker = read_marker(vps / "last-backup.json")
    assert marker is not None and marker.backup_id in created.output

    listed = run("list", "--json")
    assert listed.exit_code == 0
    assert [(i["backup_id"], i["status"]) for i in json.loads(listed.output)] == [(marker.backup_id, "complete")]

    verified = run("verify", "latest")
    assert verified.exit_code == 0 and f"verified state backup {marker.backup_id}" in verified.output

    dest = tmp_path / "restored"
    restored = run("restore", marker.backup_id, str(dest))
    assert restored.exit_code == 0, restored.output
    assert (dest / "config" / "Pulumi.prod.acme.yaml").read_text() == "config: {}\n"
    assert (dest / "state" / ".pulumi" / "meta.yaml").read_text() == "version: 1\n"

    again = run("restore", "latest", str(dest))
    assert again.exit_code == 1
    assert f"Error: restore target {dest} is not an empty directory" in again.output


def test_create_with_retention_prunes(vps: Path, fast_kdf: None) -> None:
    assert run("create").exit_code == 0
    second = run("create", "--keep-last", "1")
    assert second.exit_code == 0, second.output
    assert "pruned state backup" in second.output and "kept 1 complete state backup(s)" in second.output
    assert len(json.loads(run("list", "--json").output)) == 1


def test_escrow_is_separate(vps: Path, fast_kdf: None) -> None:
    assert run("create", "--escrow").exit_code == 0
    assert run("list").output.strip() == "no state backups"
    escrow = run("list", "--escrow")
    assert "complete" in escrow.output
    assert not (vps / "last-backup.json").exists()  # escrow is not a state backup for doctor


def test_wide_backup_passphrase_file_is_refused(vps: Path, fast_kdf: None) -> None:
    (vps / "backup-passphrase").chmod(0o644)
    result = run("create")
    assert result.exit_code == 1
    assert "backup-passphrase has mode 0644; it must be 0600" in result.output


def test_wrong_backup_passphrase(vps: Path, fast_kdf: None) -> None:
    assert run("create").exit_code == 0
    (vps / "backup-passphrase").write_text("something else\n")
    result = run("verify", "latest")
    assert result.exit_code == 1
    assert "Error: the backup passphrase opens none of the 1 state backup(s)" in result.output


def test_missing_bucket_and_unknown_backup(vps: Path, monkeypatch: pytest.MonkeyPatch, fast_kdf: None) -> None:
    assert "there is no complete state backup" in run("verify", "latest").output
    missing = run("verify", "20250101T000000Z-00000000")
    assert missing.exit_code == 1 and "has no manifest" in missing.output
    monkeypatch.delenv("CLAWDBOT_R2_BUCKET")
    result = run("list")
    assert result.exit_code == 1
    assert "no backup bucket configured: set CLAWDBOT_R2_BUCKET" in result.output


@pytest.mark.parametrize("args", [[], ["create"], ["restore"], ["prune"]])
def test_help_explains(args: list[str]) -> None:
    result = CliRunner().invoke(backup, [*args, "--help"])
    assert result.exit_code == 0
    assert {
        (): "AES-256-GCM",
        ("create",): "manifest is uploaded last",
        ("restore",): "must be empty or not exist",
        ("prune",): "never deleted",
    }[tuple(args)] in " ".join(result.output.split())


def test_prune_needs_a_policy(vps: Path, fast_kdf: None) -> None:
    result = run("prune")
    assert result.exit_code == 1
    assert "needs keep-last and/or keep-days" in result.output


@pytest.mark.parametrize("escrow", [[], ["--escrow"]])
def test_create_refuses_a_backup_passphrase_equal_to_the_state_passphrase(
    vps: Path, fast_kdf: None, escrow: list[str]
) -> None:
    reused = "Zq9-one-passphrase-for-both"
    (vps / "passphrase").write_text(reused + "\n")
    (vps / "backup-passphrase").write_text(f"  {reused}\n")  # trimmed like the state passphrase file
    result = run("create", *escrow)
    assert result.exit_code == 1
    assert f"backup passphrase file {vps / 'backup-passphrase'} holds the same passphrase as the state" in result.output
    assert reused not in result.output
    assert json.loads(run("list", "--json", *escrow).output) == []


def test_state_backup_takes_the_fleet_lease(vps: Path, fast_kdf: None) -> None:
    lease = vps / "work" / "fleet.lock"
    with fleet_lease(lease, holder="ops@box", command="up acme"):
        busy = run("create")
        assert busy.exit_code == 1
        assert f"another fleet run holds {lease}: up acme by ops@box" in busy.output
        assert json.loads(run("list", "--json").output) == []
        assert run("create", "--escrow").exit_code == 0  # the escrow reads no fleet state
    assert run("create").exit_code == 0


def test_create_waits_for_the_lease(vps: Path, fast_kdf: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_backup, "LEASE_POLL_S", 0.05)
    held, release = threading.Event(), threading.Event()

    def fleet_run() -> None:
        with fleet_lease(vps / "work" / "fleet.lock", holder="ops@box", command="up acme"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=fleet_run)
    holder.start()
    try:
        assert held.wait(10)
        threading.Timer(0.5, release.set).start()
        started = time.monotonic()
        result = run("create", "--lease-wait", "30")
        assert result.exit_code == 0, result.output
        assert time.monotonic() - started >= 0.4
    finally:
        release.set()
        holder.join()


def test_a_restore_goes_to_the_audit_log(
    vps: Path, tmp_path: Path, fast_kdf: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12 item 7: every restore is audited (which backup, where to; never a file's contents)."""
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("CLAWDBOT_AUDIT_LOG", str(log))
    assert run("create").exit_code == 0
    dest = tmp_path / "restored"
    assert run("restore", "latest", str(dest)).exit_code == 0
    (event,) = [e for e in read_events(log) if e.operation == "backup-restore"]
    marker = read_marker(vps / "last-backup.json")
    assert marker is not None and event.detail == f"state backup {marker.backup_id} into {dest}"
    assert event.stack == "fleet" and event.result == "ok"
    assert "state pass" not in log.read_text() and BACKUP_PASS not in log.read_text()


def test_a_state_on_r2_is_backed_up_object_by_object_and_restores_as_a_state_dir(
    vps: Path, fast_kdf: None, endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cluster mode (docs/cluster.md): the state lives in a bucket folder; the backup holds it as the
    `.pulumi/` tree a file backend has, and never reads what lies outside the URL's folder."""
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="clawdbot-state")
    checkpoint = b'{"version": 3, "checkpoint": {"stack": "prod.acme"}}'
    objects = {
        "fleet/.pulumi/meta.yaml": b"version: 1\n",
        "fleet/.pulumi/stacks/clawdbot/prod.acme.json": checkpoint,
        "fleet/.pulumi/history/clawdbot/prod.acme/prod.acme-1.history.json": b"{}",
        "other-fleet/.pulumi/meta.yaml": b"not ours\n",
    }
    for key, body in objects.items():
        client.put_object(Bucket="clawdbot-state", Key=key, Body=body)
    url = f"s3://clawdbot-state/fleet?endpoint={endpoint}&s3ForcePathStyle=true"
    monkeypatch.setenv("CLAWDBOT_STATE_BACKEND", url)
    created = run("create")
    assert created.exit_code == 0, created.output
    assert "5 files" in created.output  # 3 state objects + Pulumi.yaml + the tenant's stack file
    assert not list((vps / "work").glob("state-copy-*"))  # the scratch copy is gone

    dest = tmp_path / "restored"
    assert run("restore", "latest", str(dest)).exit_code == 0
    state = dest / "state" / ".pulumi"
    assert (state / "stacks" / "clawdbot" / "prod.acme.json").read_bytes() == checkpoint
    assert (state / "meta.yaml").read_text() == "version: 1\n"
    assert sorted(p.name for p in state.rglob("*") if p.is_file()) == [
        "meta.yaml",
        "prod.acme-1.history.json",
        "prod.acme.json",
    ]
