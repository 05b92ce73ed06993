"""The one way a file is replaced durably (config/atomic_file.py), for both of its writers.

`write_atomically` (records, stack files, tokens) and `stack_writer.put_in_place` (a new stack file,
checked before it lands) stage the bytes beside the target, fsynced and 0600, move them into place
and fsync the directory; on any failure the target is as it was and no temp file is left.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.config.atomic_file import write_atomically
from orchestrator.config.stack_writer import put_in_place
from orchestrator.core.errors import ConfigError


def _left(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_write_atomically_replaces_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text("old")
    write_atomically(target, "new", mode=0o640)
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _left(tmp_path) == ["record.json"]


def test_a_failed_rename_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "record.json"
    target.write_text("old")

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, "new")
    assert target.read_text() == "old" and _left(tmp_path) == ["record.json"]


@pytest.mark.parametrize("replace", [True, False])
def test_put_in_place_checks_a_private_copy_then_moves_it(tmp_path: Path, replace: bool) -> None:
    target = tmp_path / "Pulumi.prod.acme.yaml"
    seen: list[tuple[str, int]] = []

    def check(copy: Path) -> None:
        seen.append((copy.read_text(), stat.S_IMODE(copy.stat().st_mode)))

    put_in_place(target, "config: {}\n", check, replace=replace)
    assert seen == [("config: {}\n", 0o600)]  # never readable by others, even before it lands
    assert target.read_text() == "config: {}\n" and _left(tmp_path) == [target.name]


def test_put_in_place_never_replaces_a_file_unless_asked_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "Pulumi.prod.acme.yaml"
    target.write_text("theirs")
    with pytest.raises(ConfigError, match="already exists; nothing was changed"):
        put_in_place(target, "ours", lambda copy: None, replace=False)
    assert target.read_text() == "theirs" and _left(tmp_path) == [target.name]


def test_a_refused_check_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "Pulumi.prod.acme.yaml"

    def check(copy: Path) -> None:
        raise ConfigError("reads back differently")

    with pytest.raises(ConfigError, match="reads back differently"):
        put_in_place(target, "x: 1\n", check, replace=True)
    assert _left(tmp_path) == []
