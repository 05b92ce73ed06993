"""Replace a file so readers see the old bytes or the new, never half, even across a crash."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


@contextlib.contextmanager
def staged_beside(path: Path, data: bytes) -> Iterator[Path]:
    """`data` in a new temp file next to `path`, fsynced, for the caller to move into place; gone on exit.

    mkstemp creates it 0600, so a secret is never briefly readable by others; next to `path`, so the
    move is a rename (or link) within one directory, which readers see whole or not at all.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)  # nothing left once it was moved


def sync_directory(directory: Path) -> None:
    """fsync a directory, so a rename or link just made in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write `data` beside `path`, fsync it, give it `mode`, rename it over `path`, fsync the directory."""
    with staged_beside(path, data.encode("utf-8") if isinstance(data, str) else data) as tmp:
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    sync_directory(path.parent)


def write_many_atomically(files: Mapping[Path, bytes], mode: int = 0o600) -> None:
    """Replace many files, each atomically, with two syncs for the whole batch instead of two fsyncs each.

    Every new file is written beside its target first; one sync(2) makes all their bytes durable;
    then each is renamed over its target and a second sync makes the renames durable. A crash at any
    point leaves each file old or new, never torn, as `write_atomically` does; a failure before the
    renames (a full disk) leaves every target old and no temp file behind. sync(2) flushes the whole
    system, so this pays off from a handful of files up (a wave's records, a re-rendered fleet's).
    Linux's sync(2) waits for the writes to complete (man 2 sync, NOTES). The files are written and
    renamed from a few threads: replacing a file waits on freeing the old one's blocks (2 ms each on
    an ext4 VPS disk, measured), and those waits overlap.
    """
    staged: dict[Path, str] = {}
    lock = threading.Lock()

    def stage(item: tuple[Path, bytes]) -> None:
        path, data = item
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with lock:
            staged[path] = tmp
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)

    def rename(path: Path) -> None:
        os.replace(staged[path], path)
        with lock:
            del staged[path]

    if not files:
        return
    try:
        with ThreadPoolExecutor(max_workers=min(_WRITERS, len(files))) as pool:
            list(pool.map(stage, files.items()))
            os.sync()
            # Not pool.map: its iterator cancels the renames not yet started when one fails (CPython 3.11
            # concurrent/futures/_base.py, Executor.map result_iterator finally), so which
            # targets end up new would depend on thread timing. Every rename runs; the first error is raised.
            renames = [pool.submit(rename, path) for path in list(staged)]
            for done in renames:
                done.exception()
            for done in renames:
                done.result()
    finally:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
    os.sync()


_WRITERS = 16
"""Threads of `write_many_atomically`."""


def make_private_dirs(path: Path) -> None:
    """`mkdir -p` where every directory created is 0700 (Path.mkdir gives parents the default mode).

    So a first run on a fresh machine makes `~/.clawdbot` itself owner-only, not only its leaves.
    Existing directories are left as they are (callers check the modes they rely on).
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by a concurrent run
            directory.mkdir(mode=0o700)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
