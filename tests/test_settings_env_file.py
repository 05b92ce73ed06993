"""The CLI reads the VPS env file as /work/notes' layout contract says (tests/vps_setup.py ENV_LINE)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from vps_setup import ENV_LINE as SETUP_ENV_LINE

from orchestrator.config.settings import ENV_LINE, Settings, read_env_file
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import ConfigError


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clawdbot.env"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_cli_and_setup_share_one_format() -> None:
    assert ENV_LINE.pattern == SETUP_ENV_LINE.pattern


def test_env_file_named_by_the_variable_sets_paths(tmp_path: Path) -> None:
    path = _file(tmp_path, "# layout\n\nCLAWDBOT_STATE_DIR=/srv/state\nCLAWDBOT_R2_BUCKET=b\nPULUMI_HOME=/x\n")
    settings = Settings.from_env({"CLAWDBOT_ENV_FILE": str(path)})
    assert settings.state_dir == Path("/srv/state") and settings.r2_bucket == "b"


def test_process_environment_beats_the_file_which_beats_defaults(tmp_path: Path) -> None:
    path = _file(tmp_path, "CLAWDBOT_STATE_DIR=/from/file\nCLAWDBOT_WORK_ROOT=/file/work\n")
    env = {"CLAWDBOT_ENV_FILE": str(path), "CLAWDBOT_STATE_DIR": "/from/process", "CLAWDBOT_AUDIT_LOG": ""}
    settings = Settings.from_env(env)
    defaults = Settings()
    assert settings.state_dir == Path("/from/process")
    assert settings.work_root == Path("/file/work")
    assert settings.audit_log == defaults.audit_log  # empty means unset, neither source sets it


def test_the_default_file_is_read_only_when_it_exists(tmp_path: Path) -> None:
    path = _file(tmp_path, "CLAWDBOT_R2_REGION=eu\n")
    assert Settings.from_env({}, default_env_file=path).r2_region == "eu"
    assert Settings.from_env({}, default_env_file=tmp_path / "absent").r2_region == "auto"
    # the variable wins over the default location
    other = tmp_path / "other.env"
    other.write_text("CLAWDBOT_R2_REGION=us\n")
    assert Settings.from_env({"CLAWDBOT_ENV_FILE": str(other)}, default_env_file=path).r2_region == "us"


def test_passphrase_file_from_the_raw_pulumi_variable_in_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "PULUMI_CONFIG_PASSPHRASE_FILE=/etc/clawdbot/passphrase\n")
    assert Settings.from_env({"CLAWDBOT_ENV_FILE": str(path)}).passphrase_file == Path("/etc/clawdbot/passphrase")


@pytest.mark.parametrize(
    "line",
    [
        'CLAWDBOT_R2_BUCKET="quoted"',
        "CLAWDBOT_R2_BUCKET='quoted'",
        "CLAWDBOT_R2_BUCKET=has space",
        "CLAWDBOT_R2_BUCKET=$HOME",
        "CLAWDBOT_R2_BUCKET=a#comment",
        "CLAWDBOT_R2_BUCKET=back\\slash",
        "CLAWDBOT_R2_BUCKET=`id`",
        "export CLAWDBOT_R2_BUCKET=b",
        " CLAWDBOT_R2_BUCKET=b",
        "clawdbot_r2_bucket=b",
        "1KEY=b",
        "NOEQUALS",
        "CLAWDBOT_R2_BUCKET=b\r",
        "CLAWDBOT_R2_BUCKET=b\t",
        "=value",
    ],
)
def test_a_line_that_does_not_match_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "clawdbot.env"
    path.write_bytes(f"# ok\nCLAWDBOT_STATE_DIR=/s\n{line}\n".encode())
    assert not SETUP_ENV_LINE.fullmatch(line)  # setup-vps.sh refuses it too
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"CLAWDBOT_ENV_FILE": str(path)})
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ") and "\n" not in message


def test_a_refused_line_is_never_echoed(tmp_path: Path) -> None:
    path = _file(tmp_path, 'CLAWDBOT_R2_BUCKET=sk_live_"hunter2"\n')
    with pytest.raises(ConfigError) as caught:
        read_env_file(path)
    assert "hunter2" not in str(caught.value)


def test_a_key_twice_and_non_utf8_are_refused(tmp_path: Path) -> None:
    twice = _file(tmp_path, "CLAWDBOT_R2_BUCKET=a\n\nCLAWDBOT_R2_BUCKET=b\n")
    with pytest.raises(ConfigError, match=r"clawdbot.env:3: CLAWDBOT_R2_BUCKET is set twice"):
        read_env_file(twice)
    latin = tmp_path / "latin.env"
    latin.write_bytes(b"A=1\nB=caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.env:2: not UTF-8"):
        read_env_file(latin)


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CLAWDBOT_ENV_FILE names .*absent"):
        Settings.from_env({"CLAWDBOT_ENV_FILE": str(tmp_path / "absent")})
    with pytest.raises(ConfigError, match="CLAWDBOT_ENV_FILE names"):
        Settings.from_env({"CLAWDBOT_ENV_FILE": str(tmp_path)})
    assert Settings.from_env({"CLAWDBOT_ENV_FILE": os.devnull}) == Settings.from_env({})


def test_the_cli_prints_one_error_line_for_a_bad_file(tmp_path: Path) -> None:
    path = _file(tmp_path, 'CLAWDBOT_STATE_DIR=/s\nCLAWDBOT_R2_BUCKET="x"\n')
    env = {**os.environ, "CLAWDBOT_ENV_FILE": str(path)}
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "tenants", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"Error: {path}:2: ") and "Traceback" not in result.stderr


def test_no_test_writes_the_developers_audit_log() -> None:
    # conftest's autouse fixture: in-process `secrets set`/`rotate` tests appended to ~/.clawdbot/audit.jsonl.
    audit_log = Settings.from_env().audit_log
    assert not audit_log.is_relative_to(Path.home()) and audit_log.parent.is_dir()
