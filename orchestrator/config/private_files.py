"""Owner-only files and directories: the one rule for everything that holds a secret on the VPS.

A secret file (the state and backup passphrases, the local edge's relay keys and control token)
must be a regular file, not a symbolic link, owned by the user running the control plane, with
mode 0600 or 0400: nobody else may read it, and nothing but reading and writing it makes sense.
A private directory (the state backend, the work dirs, the local edge's state) must be a real
directory owned by that user with no access for group or others (0700). The mode checked is the
mode of the file actually read (O_NOFOLLOW, then fstat), so a swap between check and read gains
nothing. Every refusal says how to fix it, with the same hint everywhere.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.config.atomic_file import make_private_dirs
from orchestrator.core.errors import ConfigError, PermissionsError, SetupError

FILE_MODES = (0o600, 0o400)
"""The modes a secret file may have."""
DIR_MODE = 0o700
"""The mode a private directory is created with; any group or other bit is refused."""


def _owner_problem(path: Path, info: os.stat_result) -> str | None:
    if info.st_uid != os.getuid():
        return (
            f"{path} is owned by uid {info.st_uid}, not by this user (uid {os.getuid()}); "
            f"run the control plane as its owner, or `chown {os.getuid()} {path}`"
        )
    return None


def file_problem(path: Path, info: os.stat_result) -> str | None:
    """Why `info` (an lstat or fstat of `path`) is not an acceptable secret file, or None."""
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    owner = _owner_problem(path, info)
    if owner:
        return owner
    mode = stat.S_IMODE(info.st_mode)
    if mode not in FILE_MODES:
        return f"{path} has mode {mode:04o}; it must be 0600 or 0400 (chmod 600 {path})"
    return None


def dir_problem(path: Path) -> str | None:
    """Why `path` is not an acceptable private directory (missing included), or None."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return f"{path} does not exist"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    owner = _owner_problem(path, info)
    if owner:
        return owner
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return f"{path} has mode {mode:04o}; it must be 0700 (chmod 700 {path})"
    return None


def _raise(what: str, problem: str, info: os.stat_result | None = None) -> None:
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what} {problem}")
    raise PermissionsError(f"{what} {problem}")


def check_private_file(path: Path, what: str) -> None:
    """Refuse a secret file that is missing or fails the rule. Never reads it."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise ConfigError(
            f"{what} {path} does not exist: create it with `install -m 600 /dev/null {path}` "
            f"and write the secret into it"
        ) from None
    problem = file_problem(path, info)
    if problem:
        _raise(what, problem, info)


def read_private_file(path: Path, what: str, *, missing_ok: bool = False) -> bytes | None:
    """The bytes of a secret file that passes the rule; None when absent and `missing_ok`."""
    try:
        # O_NONBLOCK: opening a FIFO planted in the file's place must not hang the process.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ConfigError(f"{what} {path} does not exist") from None
    except OSError as exc:
        # ELOOP: a symbolic link, refused by O_NOFOLLOW.
        raise ConfigError(f"{what} {path} cannot be opened: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        problem = file_problem(path, info)
        if problem:
            _raise(what, problem, info)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def check_private_dir(path: Path, what: str) -> None:
    """Refuse a private directory that is missing or fails the rule."""
    problem = dir_problem(path)
    if problem:
        raise PermissionsError(f"{what} {problem}")


def ensure_private_dir(path: Path, what: str) -> None:
    """Create `path` (and every missing parent) 0700, or refuse an existing one that fails the rule."""
    try:
        make_private_dirs(path)
    except OSError as exc:
        raise SetupError(f"{what} {path}: cannot be created ({exc.strerror})") from None
    check_private_dir(path, what)
