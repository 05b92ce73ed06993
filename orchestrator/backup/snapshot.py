"""What a backup holds, and how files become a byte stream and back.

The archive is deliberately not tar: the manifest lists every entry (path, mode, size, SHA-256)
and the stream is just the files' bytes in manifest order. Restoring needs no archive parser that
could be fooled by a crafted member, and every file is checked against its hash as it is written.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, field_validator

from orchestrator.backup.errors import BackupError

READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One directory to back up, stored under `name/` in the snapshot."""

    name: str
    root: Path
    patterns: tuple[str, ...] | None = None
    """Glob patterns of files directly in `root`; None takes the whole tree."""


class Entry(BaseModel):
    """One file or directory of a snapshot, as recorded in the (encrypted) manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    type: Literal["file", "dir"]
    mode: int
    size: int = 0
    sha256: str = ""

    @field_validator("path")
    @classmethod
    def _relative_and_inside(cls, value: str) -> str:
        # The manifest is authenticated, but restore must still never write outside its target.
        pure = PurePosixPath(value)
        if pure.is_absolute() or not pure.parts or any(p in ("..", ".", "") for p in pure.parts):
            raise ValueError(f"unsafe path {value!r}")
        return value

    @field_validator("mode")
    @classmethod
    def _permission_bits_only(cls, value: int) -> int:
        if value & ~0o7777:
            raise ValueError(f"mode {value:o} has more than permission bits")
        return value


@dataclass(frozen=True)
class FileIdentity:
    """What `collect` saw of a file; the file read later must still be this one, unchanged."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(dev=st.st_dev, ino=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns)


@dataclass(frozen=True)
class Collected:
    """One entry of a snapshot, where it is on disk, and (for a file) the identity it was listed with."""

    entry: Entry
    path: Path
    identity: FileIdentity | None = None


def collect(sources: list[Source]) -> list[Collected]:
    """List what will be backed up, directories before their contents, in a stable order."""
    found: list[Collected] = []
    for source in sources:
        if not source.root.is_dir():
            raise BackupError(f"backup source {source.name!r}: {source.root} is not a directory")
        found.append(_dir_entry(source.name, source.root))
        if source.patterns is None:
            found.extend(_walk(source.name, source.root))
        else:
            names = sorted({p.name for pattern in source.patterns for p in source.root.glob(pattern)})
            for name in names:
                found.append(_file_entry(f"{source.name}/{name}", source.root / name))
    return found


def _walk(prefix: str, root: Path) -> Iterator[Collected]:
    for child in sorted(root.iterdir(), key=lambda p: p.name):
        rel = f"{prefix}/{child.name}"
        mode = child.lstat().st_mode
        if stat.S_ISDIR(mode):
            yield _dir_entry(rel, child)
            yield from _walk(rel, child)
        else:
            yield _file_entry(rel, child)


def _dir_entry(rel: str, path: Path) -> Collected:
    return Collected(Entry(path=rel, type="dir", mode=stat.S_IMODE(path.lstat().st_mode)), path)


def _file_entry(rel: str, path: Path) -> Collected:
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode):
        # A symlink could point outside the backed-up tree; refuse rather than guess.
        raise BackupError(f"cannot back up {path}: not a regular file (symlink or special file)")
    entry = Entry(path=rel, type="file", mode=stat.S_IMODE(st.st_mode), size=st.st_size)
    return Collected(entry, path, FileIdentity.of(st))


def _changed(path: Path) -> BackupError:
    return BackupError(f"cannot back up {path}: it changed during backup; retry")


class SnapshotReader:
    """Streams the files of a collected snapshot as fixed-size plaintext chunks, hashing as it reads."""

    def __init__(self, collected: list[Collected], chunk_size: int) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self._collected = collected
        self._chunk_size = chunk_size
        self.entries: list[Entry] = []
        """Filled while chunks() runs: the entries with their hashes, in stream order."""

    @property
    def total_size(self) -> int:
        return sum(item.entry.size for item in self._collected)

    def chunks(self) -> Iterator[bytes]:
        buffer = bytearray()
        for item in self._collected:
            entry = item.entry
            if entry.type == "dir" or item.identity is None:
                self.entries.append(entry)
                continue
            digest = hashlib.sha256()
            for block in _read_unchanged(item.path, item.identity):
                digest.update(block)
                buffer += block
                while len(buffer) >= self._chunk_size:
                    yield bytes(buffer[: self._chunk_size])
                    del buffer[: self._chunk_size]
            self.entries.append(entry.model_copy(update={"sha256": digest.hexdigest()}))
        # An empty snapshot still gets one (empty) chunk, so every backup has the same shape.
        if buffer or self.total_size == 0:
            yield bytes(buffer)


def _read_unchanged(path: Path, identity: FileIdentity) -> Iterator[bytes]:
    """The bytes of the very file `collect` listed, or BackupError if it was replaced or written meanwhile.

    Pulumi replaces a checkpoint by rename: reopening the path may give another inode of another
    size. The descriptor's fstat before and after the read must match what was listed (inode,
    size, mtime), so a backup never records a truncated or mixed file as if it were whole.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        # Gone, or replaced by a symlink (ELOOP) since it was listed.
        raise _changed(path) from None
    with os.fdopen(fd, "rb") as handle:
        if FileIdentity.of(os.fstat(fd)) != identity:
            raise _changed(path)
        remaining = identity.size
        while remaining:
            block = handle.read(min(READ_BLOCK, remaining))
            if not block:
                raise _changed(path)
            remaining -= len(block)
            yield block
        if handle.read(1) or FileIdentity.of(os.fstat(fd)) != identity:
            raise _changed(path)


class SnapshotWriter:
    """Writes a plaintext stream back into files under `target`, checking each file's hash.

    With `target=None` nothing is written: the stream is only checked (what `verify` does).
    """

    def __init__(self, target: Path | None, entries: list[Entry]) -> None:
        self._target = target
        self._entries = entries
        self._index = -1
        self._handle: _Sink | None = None
        self._remaining = 0
        self._digest = hashlib.sha256()
        self._advance()

    def _advance(self) -> None:
        self._close_current()
        while True:
            self._index += 1
            if self._index >= len(self._entries):
                return
            entry = self._entries[self._index]
            if entry.type == "dir":
                if self._target is not None:
                    # Owner-only while restoring; the recorded mode is applied at the end.
                    (self._target / entry.path).mkdir(mode=0o700)
                continue
            self._handle = self._open(entry)
            self._remaining = entry.size
            self._digest = hashlib.sha256()
            if self._remaining == 0:
                self._close_current()
                continue
            return

    def _open(self, entry: Entry) -> _Sink:
        if self._target is None:
            return _NullSink()
        # O_EXCL: never follow or overwrite something already there.
        fd = os.open(self._target / entry.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return os.fdopen(fd, "wb")

    def _close_current(self) -> None:
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        entry = self._entries[self._index]
        if self._digest.hexdigest() != entry.sha256:
            raise BackupError(f"restored file {entry.path} does not match its manifest hash")

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._handle is None:
                raise BackupError("the backup holds more data than its manifest lists")
            part = view[: self._remaining]
            self._handle.write(part)
            self._digest.update(part)
            self._remaining -= len(part)
            view = view[len(part) :]
            if self._remaining == 0:
                self._advance()

    def finish(self) -> None:
        if self._handle is not None or self._index < len(self._entries):
            raise BackupError("the backup holds less data than its manifest lists")
        if self._target is None:
            return
        # Files first, then directories deepest first, so a read-only directory blocks nothing.
        for entry in self._entries:
            if entry.type == "file":
                os.chmod(self._target / entry.path, entry.mode)
        for entry in sorted(
            (e for e in self._entries if e.type == "dir"), key=lambda e: e.path.count("/"), reverse=True
        ):
            os.chmod(self._target / entry.path, entry.mode)


class _Sink(Protocol):
    def write(self, data: memoryview, /) -> int: ...

    def close(self) -> None: ...


class _NullSink:
    """A write-only file that discards what it is given (verification without a target)."""

    def write(self, data: memoryview, /) -> int:
        return len(data)

    def close(self) -> None:
        pass
