"""The one owner-only rule (orchestrator/config/private_files.py), and every place that relies on it.

Before, four checks disagreed: one masked 0o077 and checked the owner, one wanted exactly
0600/0400 without the owner, one followed symlinks. Each consumer below must now refuse exactly
what the rule refuses, with the same hint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.config.private_files import (
    check_private_dir,
    check_private_file,
    dir_problem,
    ensure_private_dir,
    read_private_file,
)
from orchestrator.config.secrets_provider import read_passphrase_file
from orchestrator.core.errors import ConfigError, EdgeError, PermissionsError, SetupError
from orchestrator.engine.setup import check_passphrase_file
from orchestrator.local_edge.keys import control_token
from orchestrator.local_edge.layout import StateLayout
from orchestrator.ops.doctor import check_private_dir as doctor_dir_check
from orchestrator.server.errors import TokenError
from orchestrator.server.tokens import TokenStore

SECRET = "correct horse battery staple"
OTHER_UID = 4242


def _secret_file(path: Path, mode: int) -> Path:
    path.write_text(SECRET + "\n")
    os.chmod(path, mode)
    return path


FILE_READERS: dict[str, Callable[[Path], object]] = {
    "read_private_file": lambda p: read_private_file(p, "secret file"),
    "check_private_file": lambda p: check_private_file(p, "secret file"),
    "passphrase reader": read_passphrase_file,
    "engine preflight": check_passphrase_file,
}


@pytest.mark.parametrize("reader", FILE_READERS)
@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_files_pass(reader: str, mode: int, tmp_path: Path) -> None:
    FILE_READERS[reader](_secret_file(tmp_path / "secret", mode))


@pytest.mark.parametrize("reader", FILE_READERS)
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700, 0o200, 0o000, 0o4600])
def test_any_other_mode_is_refused_with_the_one_hint(reader: str, mode: int, tmp_path: Path) -> None:
    path = _secret_file(tmp_path / "secret", mode)
    with pytest.raises(PermissionsError) as info:
        FILE_READERS[reader](path)
    message = str(info.value)
    assert f"has mode {mode & 0o7777:04o}; it must be 0600 or 0400 (chmod 600 {path})" in message
    assert SECRET not in message
    assert isinstance(info.value, SetupError)  # the fleet stops on it: every stack would fail alike


@pytest.mark.parametrize("reader", FILE_READERS)
def test_a_file_owned_by_someone_else_is_refused(reader: str, tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("changing a file's owner needs root")
    path = _secret_file(tmp_path / "secret", 0o600)
    os.chown(path, OTHER_UID, -1)
    with pytest.raises(PermissionsError, match=f"owned by uid {OTHER_UID}, not by this user"):
        FILE_READERS[reader](path)


@pytest.mark.parametrize("reader", ["read_private_file", "passphrase reader", "check_private_file", "engine preflight"])
def test_a_symlink_is_refused_even_to_a_good_file(reader: str, tmp_path: Path) -> None:
    target = _secret_file(tmp_path / "real", 0o600)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(EdgeError) as info:
        FILE_READERS[reader](link)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("reader", FILE_READERS)
def test_a_directory_or_fifo_is_not_a_secret_file(reader: str, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises((ConfigError, SetupError), match="is not a regular file"):
        FILE_READERS[reader](fifo)


def test_missing_files_say_how_to_create_them(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=f"install -m 600 /dev/null {missing}"):
        check_private_file(missing, "passphrase file")
    with pytest.raises(SetupError, match="does not exist"):
        check_passphrase_file(missing)
    assert read_private_file(missing, "token", missing_ok=True) is None


def test_the_local_edge_token_obeys_the_same_rule(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path / "edge")
    layout.ensure()
    token = control_token(layout)
    assert token and control_token(layout) == token
    os.chmod(layout.root / "control.token", 0o640)
    with pytest.raises(PermissionsError, match="it must be 0600 or 0400"):
        control_token(layout)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o700, 0o000])
def test_the_control_rooms_token_file_obeys_the_same_rule(mode: int, tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "serve" / "tokens.json")
    token = store.add("ci")
    assert store.verify(token) == "ci"
    os.chmod(store.path, mode)
    with pytest.raises(TokenError, match=re.escape(f"it must be 0600 or 0400 (chmod 600 {store.path})")):
        store.add("other")
    store.path.chmod(0o600)
    store.path.rename(tmp_path / "moved")
    os.mkfifo(store.path, 0o600)  # a FIFO in its place is refused at once, never waited on
    with pytest.raises(TokenError, match="is not a regular file"):
        store.add("other")


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701, 0o770])
def test_private_dirs_refuse_group_and_other_bits(mode: int, tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.mkdir()
    os.chmod(path, mode)
    hint = f"has mode {mode:04o}; it must be 0700 (chmod 700 {path})"
    with pytest.raises(PermissionsError, match=hint.replace("(", r"\(").replace(")", r"\)")):
        check_private_dir(path, "state directory")
    with pytest.raises(PermissionsError, match="it must be 0700"):
        ensure_private_dir(path, "state directory")
    with pytest.raises(PermissionsError, match="it must be 0700"):
        StateLayout(path).ensure()
    assert not doctor_dir_check("state dir", path).ok
    assert hint in doctor_dir_check("state dir", path).detail


def test_private_dirs_are_created_0700_and_symlinks_refused(tmp_path: Path) -> None:
    created = tmp_path / "a" / "b"
    ensure_private_dir(created, "work dir")
    assert created.stat().st_mode & 0o777 == 0o700
    assert dir_problem(created) is None and doctor_dir_check("state dir", created).ok
    link = tmp_path / "link"
    link.symlink_to(created)
    assert dir_problem(link) == f"{link} is not a directory"
    if os.getuid() == 0:
        os.chown(created, OTHER_UID, -1)
        assert f"owned by uid {OTHER_UID}" in (dir_problem(created) or "")
