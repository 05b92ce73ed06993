"""The advice for a reused backup passphrase never overwrites the state passphrase (or anything).

Every place that prints it (`backup create`, `backup create --escrow`, `doctor`) goes through
`backup.custody.reused_passphrase_message`; here its command is run for real in bash, in every
way the two settings can end up equal: one path, a symlink, a hard link, two copies, and paths
a shell would misread.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.backup.custody import reused_passphrase_message
from orchestrator.cli.backup import backup
from orchestrator.config.secrets_provider import read_passphrase_file
from orchestrator.ops.doctor import check_backup_passphrase

STATE = "the-state-passphrase-opening-every-stack"


def _private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def same_path(d: Path) -> tuple[Path, Path]:
    _private(d / "passphrase", STATE + "\n")
    return d / "passphrase", d / "passphrase"


def symlink(d: Path) -> tuple[Path, Path]:
    _private(d / "passphrase", STATE + "\n")
    (d / "backup-passphrase").symlink_to(d / "passphrase")
    return d / "passphrase", d / "backup-passphrase"


def hard_link(d: Path) -> tuple[Path, Path]:
    _private(d / "passphrase", STATE + "\n")
    os.link(d / "passphrase", d / "backup-passphrase")
    return d / "passphrase", d / "backup-passphrase"


def copies(d: Path) -> tuple[Path, Path]:
    _private(d / "passphrase", STATE + "\n")
    _private(d / "backup-passphrase", f"  {STATE}\n")  # trimmed the same way, so equal
    return d / "passphrase", d / "backup-passphrase"


def hostile_dir(d: Path) -> tuple[Path, Path]:
    odd = d / "it's $(touch pwned) `x` dir"
    odd.mkdir()
    return copies(odd)


def fresh_name_taken(d: Path) -> tuple[Path, Path]:
    # The first fresh names exist already (one is a dangling link): the advice must skip them.
    state, backup_file = same_path(d)
    _private(d / "backup-passphrase-2", "somebody's file\n")
    (d / "backup-passphrase-3").symlink_to(d / "nowhere")
    return state, backup_file


LAYOUTS: list[Callable[[Path], tuple[Path, Path]]] = [
    same_path,
    symlink,
    hard_link,
    copies,
    hostile_dir,
    fresh_name_taken,
]


def _command(message: str) -> str:
    # The command is the one parenthesised subshell between backquotes (paths may hold backquotes).
    found = re.search(r"`(\(umask 077 && set -C && .*?\))`", message)
    assert found is not None, message
    return found.group(1)


def _follow(message: str, run_in: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", _command(message)], cwd=run_in, capture_output=True, text=True, timeout=30)


def _new_backup_file(message: str, backup_file: Path) -> Path:
    found = re.search(r"set CLAWDBOT_BACKUP_PASSPHRASE_FILE=(.+?) \(in ", message)
    return Path(shlex.split(found.group(1))[0]) if found else backup_file


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_following_the_advice_keeps_every_file_and_separates_the_passphrases(
    tmp_path: Path, layout: Callable[[Path], tuple[Path, Path]]
) -> None:
    state, backup_file = layout(tmp_path)
    before = _snapshot(tmp_path)
    message = reused_passphrase_message(backup_file, state)
    assert "\n" not in message and STATE not in message

    done = _follow(message, tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "pwned").exists()

    after = _snapshot(tmp_path)
    assert state.read_text() == STATE + "\n"  # the state passphrase, untouched
    # Nothing that existed lost its bytes: every old content is still in some file.
    assert set(before.values()) <= set(after.values())
    new = _new_backup_file(message, backup_file)
    new_passphrase = read_passphrase_file(new)  # also checks it is a 0600 regular file
    assert new_passphrase != STATE and len(new_passphrase) >= 40
    assert not os.path.samefile(new, state)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_running_the_advice_twice_changes_nothing_more(
    tmp_path: Path, layout: Callable[[Path], tuple[Path, Path]]
) -> None:
    state, backup_file = layout(tmp_path)
    message = reused_passphrase_message(backup_file, state)
    assert _follow(message, tmp_path).returncode == 0
    once = _snapshot(tmp_path)
    again = _follow(message, tmp_path)
    assert again.returncode != 0  # noclobber / mv -n refuse: the targets exist now
    assert _snapshot(tmp_path) == once


@pytest.mark.parametrize("layout", [same_path, hard_link, copies], ids=lambda f: f.__name__)
def test_doctor_and_backup_create_print_that_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: Callable[[Path], tuple[Path, Path]]
) -> None:
    # (A symlinked passphrase file is refused before any comparison, by the owner-only rule.)
    state, backup_file = layout(tmp_path)
    expected = reused_passphrase_message(backup_file, state)

    doctor_check = check_backup_passphrase(backup_file, state, STATE)
    assert not doctor_check.ok and doctor_check.detail == expected

    for name, value in {
        "PASSPHRASE_FILE": state,
        "BACKUP_PASSPHRASE_FILE": backup_file,
        "R2_ENDPOINT": "http://127.0.0.1:1",
        "R2_BUCKET": "backups",
        "WORK_ROOT": tmp_path / "work",
        "STATE_DIR": tmp_path / "state",
    }.items():
        monkeypatch.setenv(f"CLAWDBOT_{name}", str(value))
    for args in (["create"], ["create", "--escrow"]):
        result = CliRunner().invoke(backup, args)
        assert result.exit_code == 1
        assert " ".join(result.output.split()) == f"Error: {expected}"
