"""`doctor`: one line per check, the failing stack named, exit 1 on any failure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

import orchestrator.ops.doctor as doctor_mod
from orchestrator.backup.marker import LastBackup, write_marker
from orchestrator.cli.doctor import doctor
from orchestrator.config.secrets_provider import new_encryption_salt
from orchestrator.config.settings import Settings
from orchestrator.ops.doctor import (
    Check,
    check_backup,
    check_disk,
    check_private_dir,
    check_pulumi_cli,
    check_stacks,
    check_state_backend,
    parse_cli_version,
)

PASSPHRASE = "doctor test passphrase"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def salt() -> str:
    # One salt for the module: PBKDF2 (1M rounds) then runs once, cached by orchestrator.config.secrets_provider.
    return new_encryption_salt(PASSPHRASE)


@pytest.fixture
def vps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, salt: str) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    state.chmod(0o700)
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: clawdbot\n")
    (project / "Pulumi.prod.yaml").write_text("config: {}\n")
    (project / "Pulumi.prod.acme.yaml").write_text(f"encryptionsalt: {salt}\nconfig: {{}}\n")
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    passphrase.chmod(0o600)
    backup_passphrase = tmp_path / "backup-passphrase"
    backup_passphrase.write_text("a different backup passphrase\n")
    backup_passphrase.chmod(0o600)
    marker = tmp_path / "last-backup.json"
    write_marker(marker, LastBackup(backup_id="20250601T000000Z-0a0b0c0d", created_at=datetime.now(UTC), bucket="b"))
    for key, value in {
        "STATE_DIR": state,
        "PROJECT_DIR": project,
        "PASSPHRASE_FILE": passphrase,
        "BACKUP_PASSPHRASE_FILE": backup_passphrase,
        "BACKUP_MARKER": marker,
        "MIN_FREE_DISK_MB": 1,
    }.items():
        monkeypatch.setenv(f"CLAWDBOT_{key}", str(value))
    for variable in ("PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL", "CLAWDBOT_STATE_BACKEND"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def _cli_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the CLI check is replaced (the Pulumi CLI cannot be installed here); it has its own tests.
    monkeypatch.setattr(doctor_mod, "check_pulumi_cli", lambda expected: Check("pulumi cli", True, f"v{expected}"))


def test_healthy_vps_passes_with_one_line_per_check(vps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_ok(monkeypatch)
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 0, result.output
    names = [line.split(":")[0] for line in result.output.splitlines()]
    assert names == [
        "ok    pulumi cli",
        "ok    state backend",
        "ok    state dir",
        "ok    passphrase file",
        "ok    passphrase variable",
        "ok    backup passphrase",
        "ok    stack prod",
        "ok    stack prod.acme",
        "ok    free disk",
        "ok    backup",
    ]
    assert PASSPHRASE not in result.output


def test_backup_passphrase_equal_to_the_state_passphrase_fails(vps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_ok(monkeypatch)
    (vps / "backup-passphrase").write_text(PASSPHRASE + "\n")
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 1
    assert (
        f"FAIL  backup passphrase: backup passphrase file {vps / 'backup-passphrase'} holds the same passphrase "
        f"as the state passphrase file {vps / 'passphrase'}; they must differ" in result.output
    )
    assert "ok    passphrase file" in result.output
    assert PASSPHRASE not in result.output
    assert "Error: 1 check(s) failed: backup passphrase" in result.output


def test_backup_passphrase_file_missing_or_wide(vps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_ok(monkeypatch)
    (vps / "backup-passphrase").chmod(0o644)
    wide = CliRunner().invoke(doctor, [])
    assert wide.exit_code == 1 and "FAIL  backup passphrase: passphrase file" in wide.output
    assert "mode 0644" in wide.output
    (vps / "backup-passphrase").unlink()
    missing = CliRunner().invoke(doctor, [])
    assert missing.exit_code == 1 and "FAIL  backup passphrase:" in missing.output
    assert "does not exist" in missing.output


def test_stack_under_another_passphrase_is_named(vps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_ok(monkeypatch)
    other = new_encryption_salt("some other passphrase")
    (vps / "project" / "Pulumi.prod.globex.yaml").write_text(f"encryptionsalt: {other}\nconfig: {{}}\n")
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 1
    assert "FAIL  stack prod.globex:" in result.output
    assert "Pulumi.prod.globex.yaml: incorrect passphrase" in result.output
    assert "ok    stack prod.acme:" in result.output
    assert "Error: 1 check(s) failed: stack prod.globex" in result.output


def test_wide_modes_fail(vps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_ok(monkeypatch)
    (vps / "state").chmod(0o755)
    (vps / "passphrase").chmod(0o644)
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 1
    assert f"FAIL  state dir: {vps / 'state'} has mode 0755; it must be 0700" in result.output
    assert "FAIL  passphrase file: passphrase file" in result.output and "mode 0644" in result.output
    assert "FAIL  stacks: not checked: the passphrase file is unusable" in result.output


def test_missing_cli_fails_with_install_hint(vps: Path) -> None:
    result = CliRunner().invoke(doctor, [], env={"PATH": str(vps)})
    assert result.exit_code == 1
    assert "FAIL  pulumi cli: not on PATH; install the Pulumi CLI 3.272.0 with scripts/setup-vps.sh" in result.output


def test_cli_check_error_paths() -> None:
    assert not check_pulumi_cli("3.272.0", which=lambda _: None).ok
    broken = check_pulumi_cli("3.272.0", which=lambda _: "/bin/false")
    assert (broken.ok, broken.detail) == (False, "/bin/false version gave no version (exit 1)")


@pytest.mark.parametrize(("output", "version"), [("v3.272.0\n", "3.272.0"), ("3.1.2", "3.1.2"), ("warning", None)])
def test_parse_cli_version(output: str, version: str | None) -> None:
    assert parse_cli_version(output) == version


def test_state_dir_missing_or_a_file(tmp_path: Path) -> None:
    assert check_private_dir("state dir", tmp_path / "nope").detail.endswith("does not exist")
    (tmp_path / "file").write_text("")
    assert check_private_dir("state dir", tmp_path / "file").detail.endswith("is not a directory")


def test_stack_without_salt_and_empty_registry(tmp_path: Path) -> None:
    assert check_stacks(tmp_path, PASSPHRASE) == [Check("stacks", False, f"no Pulumi.<stack>.yaml files in {tmp_path}")]
    (tmp_path / "Pulumi.prod.yaml").write_text("config: {}\n")
    assert check_stacks(tmp_path, PASSPHRASE) == [Check("stack prod", True, "no secrets yet (no encryptionsalt)")]
    (tmp_path / "Pulumi.prod.bad.yaml").write_text("config: [unclosed\n")
    bad = check_stacks(tmp_path, PASSPHRASE)[1]
    assert bad.name == "stack prod.bad" and not bad.ok


def test_backup_freshness(tmp_path: Path) -> None:
    marker = tmp_path / "m.json"
    assert "no completed backup recorded" in check_backup(marker, 26, NOW).detail
    write_marker(marker, LastBackup(backup_id="x", created_at=NOW - timedelta(hours=30), bucket="b"))
    stale = check_backup(marker, 26, NOW)
    assert (stale.ok, stale.detail.endswith("older than 26 h")) == (False, True)
    write_marker(marker, LastBackup(backup_id="x", created_at=NOW - timedelta(hours=2), bucket="b"))
    assert check_backup(marker, 26, NOW).ok
    marker.write_text("{not json")
    assert "is unreadable" in check_backup(marker, 26, NOW).detail


def test_free_disk_threshold(tmp_path: Path) -> None:
    assert check_disk(tmp_path / "not" / "yet", 1).ok
    low = check_disk(tmp_path, 1 << 40)
    assert not low.ok and "below" in low.detail


def test_json_is_one_document_with_every_check(vps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_ok(monkeypatch)
    text = CliRunner().invoke(doctor, [])
    result = CliRunner().invoke(doctor, ["--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)  # the whole of stdout: one document, nothing else
    assert document["ok"] is True
    assert [c["name"] for c in document["checks"]] == [line.split(":")[0][6:] for line in text.output.splitlines()]
    assert all(set(c) == {"name", "ok", "detail"} and c["ok"] is True for c in document["checks"])


def test_json_with_a_failure_is_ok_false_exit_1_and_no_error_line(vps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_ok(monkeypatch)
    (vps / "backup-passphrase").write_text(PASSPHRASE + "\n")
    (vps / "state").chmod(0o755)
    result = CliRunner().invoke(doctor, ["--json"])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["ok"] is False
    failed = {c["name"] for c in document["checks"] if not c["ok"]}
    assert failed == {"state dir", "backup passphrase"}
    assert PASSPHRASE not in result.output


R2_URL = (
    "s3://clawdbot-state/fleet?endpoint=https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
    "&region=auto&s3ForcePathStyle=true"
)
KEYS = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "r2-secret-value"}


def test_state_backend_reports_the_kind(tmp_path: Path) -> None:
    local = Settings.from_env({"CLAWDBOT_STATE_DIR": str(tmp_path)})
    check = check_state_backend(local, {})
    assert check.ok and check.detail == f"file backend {tmp_path.resolve()} (this machine only)"
    shared = Settings.from_env({"CLAWDBOT_STATE_BACKEND": R2_URL})
    check = check_state_backend(shared, {**KEYS, "PULUMI_BACKEND_URL": R2_URL})
    assert check.ok and check.detail.startswith("R2 backend s3://clawdbot-state/fleet at https://")
    assert "not atomic" in check.detail and "r2-secret-value" not in check.line()


def test_a_shared_backend_without_its_key_pair_fails_naming_the_variables() -> None:
    shared = Settings.from_env({"CLAWDBOT_STATE_BACKEND": R2_URL})
    check = check_state_backend(shared, {"AWS_ACCESS_KEY_ID": "id"})
    assert not check.ok and "AWS_SECRET_ACCESS_KEY not set" in check.detail
    assert "AWS_ACCESS_KEY_ID and" not in check.detail


def test_a_hand_run_cli_pointed_elsewhere_fails(tmp_path: Path) -> None:
    shared = Settings.from_env({"CLAWDBOT_STATE_BACKEND": R2_URL})
    check = check_state_backend(shared, {**KEYS, "PULUMI_BACKEND_URL": f"file://{tmp_path}"})
    assert not check.ok and "PULUMI_BACKEND_URL names another state" in check.detail
    local = Settings.from_env({"CLAWDBOT_STATE_DIR": str(tmp_path)})
    assert not check_state_backend(local, {"PULUMI_BACKEND_URL": R2_URL}).ok
    assert check_state_backend(local, {"PULUMI_BACKEND_URL": f"file://{tmp_path.resolve()}/"}).ok


def test_doctor_on_a_shared_backend_skips_the_state_dir(vps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_ok(monkeypatch)
    monkeypatch.setenv("CLAWDBOT_STATE_BACKEND", R2_URL)
    for key, value in KEYS.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(doctor, [])
    assert result.exit_code == 0, result.output
    assert "ok    state backend: R2 backend s3://clawdbot-state/fleet" in result.output
    assert "state dir" not in result.output and "r2-secret-value" not in result.output
