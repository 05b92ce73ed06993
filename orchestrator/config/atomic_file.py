"""Replace a file so readers see the old bytes or the new, never half, even across a crash."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write `data` beside `path`, fsync it, give it `mode`, rename it over `path`, fsync the directory.

    The temp file is created 0600 by mkstemp, so a secret is never briefly readable by others.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


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
