"""Many files replaced at once, each atomically, with one sync for the data and one for the renames."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.config.atomic_file import write_many_atomically


def targets(tmp_path: Path, n: int) -> dict[Path, bytes]:
    out = {}
    for i in range(n):
        directory = tmp_path / f"d{i % 3}"
        directory.mkdir(exist_ok=True)
        path = directory / f"f{i}.json"
        path.write_bytes(b"old")
        out[path] = f"new {i}".encode()
    return out


def leftovers(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_every_file_is_replaced_with_its_mode_and_no_temp_left(tmp_path: Path) -> None:
    files = targets(tmp_path, 7)
    write_many_atomically(files, mode=0o600)
    for path, data in files.items():
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_data_is_synced_before_any_rename_and_renames_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The crash-safety argument: a rename must never point at bytes that are not on disk yet. One
    # sync(2) stands for an fsync of every file because Linux's waits for the I/O to complete
    # (man 2 sync, NOTES, man-pages 5.10: "Linux waits for I/O completions, and thus sync() or
    # syncfs() provide the same guarantees as fsync called on every file in the system").
    log: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "sync", lambda: log.append("sync"))

    def replace(src: str, dst: Path) -> None:
        log.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_many_atomically(targets(tmp_path, 4))
    assert log == ["sync", "replace", "replace", "replace", "replace", "sync"]
    log.clear()
    write_many_atomically({})
    assert log == [], "nothing to write, nothing to sync"


def test_a_failure_before_the_renames_leaves_every_target_old(tmp_path: Path) -> None:
    files = targets(tmp_path, 6)
    broken = (
        dict(list(files.items())[:3]) | {tmp_path / "missing-dir" / "x.json": b"new"} | dict(list(files.items())[3:])
    )
    with pytest.raises(FileNotFoundError):
        write_many_atomically(broken)
    assert all(path.read_bytes() == b"old" for path in files)
    assert leftovers(tmp_path) == []


def test_a_failed_rename_removes_the_temps_not_yet_renamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = targets(tmp_path, 4)
    real_replace = os.replace
    doomed = list(files)[2]

    def replace(src: str, dst: Path) -> None:
        if dst == doomed:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        write_many_atomically(files)
    assert leftovers(tmp_path) == []
    assert {p: p.read_bytes() for p in files} == {p: (b"old" if p == doomed else data) for p, data in files.items()}
