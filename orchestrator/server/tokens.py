"""Bearer tokens of the control room: one per client, with a name, kept hashed in a 0600 file.

A token is `cbt_` plus 256 random bits (url-safe base64). Only its SHA-256 is stored: the token
has the full entropy of a key, so a slow password hash would add nothing but latency to every
request. `verify` hashes what the client sent and compares it with *every* stored hash in
constant time (`hmac.compare_digest`, no early exit), so neither timing nor order tells which
token nearly matched. A bad token is simply "not authenticated": `verify` never raises on it.

The server re-reads the file whenever its identity changes (inode, size, mtime), so `serve token
add|remove` take effect on the next request without a restart. A file others may read, or one
that is not a regular file owned by us, is refused whole: the server then accepts no token at
all (fail closed) and says why in its log.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.server.errors import TokenError
from orchestrator.server.library import file_problem, write_atomically

PREFIX = "cbt_"
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_FILE = 1024 * 1024
"""A token file is a few hundred bytes per client; anything much larger is not ours."""


class StoredToken(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME.pattern)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: datetime


class TokenFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    tokens: tuple[StoredToken, ...] = ()


@dataclass(frozen=True)
class TokenInfo:
    """What `serve token list` shows: never the token, never its hash."""

    name: str
    created: datetime


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise TokenError(f"token name {name!r}: use 1-64 characters a-z 0-9 _ . -, starting with a letter or digit")
    return name


def _read(path: Path) -> tuple[TokenFile, tuple[int, int, int]] | None:
    """The file and its identity, or None when it does not exist. Refuses unsafe files."""
    try:
        # O_NONBLOCK: a FIFO planted in the file's place must not hang the server.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TokenError(f"token file {path}: cannot open: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        problem = file_problem(path, info)  # the one owner-only rule (config/private_files.py)
        if problem:
            raise TokenError(f"token file {problem}")
        raw = os.read(fd, MAX_FILE + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE:
        raise TokenError(f"token file {path} is larger than {MAX_FILE} bytes")
    try:
        document = TokenFile.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise TokenError(f"token file {path}: {where}: {first['msg']}") from None
    return document, (info.st_ino, info.st_size, info.st_mtime_ns)


class TokenStore:
    """The token file: read (with hot reload) by the server, changed by `serve token` commands."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._identity: tuple[int, int, int] | None = None
        self._hashes: tuple[tuple[str, str], ...] = ()
        self.error: str | None = None
        """Why the file was refused at the last load (the server then accepts no token)."""

    # -- reading (server) -------------------------------------------------------------------

    def _current(self) -> tuple[tuple[str, str], ...]:
        try:
            identity = self._identity_now()
        except OSError:
            identity = None
        with self._lock:
            if identity is not None and identity == self._identity and self.error is None:
                return self._hashes
            try:
                loaded = _read(self.path)
            except TokenError as exc:
                self._identity, self._hashes, self.error = None, (), str(exc)
                return ()
            if loaded is None:
                self._identity, self._hashes, self.error = None, (), None
                return ()
            document, self._identity = loaded
            self._hashes = tuple((t.sha256, t.name) for t in document.tokens)
            self.error = None
            return self._hashes

    def _identity_now(self) -> tuple[int, int, int]:
        info = os.stat(self.path, follow_symlinks=False)
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def verify(self, presented: str) -> str | None:
        """The name of the token `presented` is, or None. Constant time over every stored token."""
        wanted = digest(presented).encode()
        found: str | None = None
        for stored, name in self._current():
            if hmac.compare_digest(wanted, stored.encode()) and found is None:
                found = name
        return found

    # -- changing (CLI) ---------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[TokenFile]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            loaded = _read(self.path)
            yield loaded[0] if loaded else TokenFile()
        finally:
            os.close(lock)

    def _write(self, document: TokenFile) -> None:
        write_atomically(self.path, document.model_dump_json(indent=2) + "\n", mode=0o600)

    def add(self, name: str) -> str:
        """Create a token named `name`; returns it (the only time it exists outside the client)."""
        _check_name(name)
        with self._locked() as document:
            if any(t.name == name for t in document.tokens):
                raise TokenError(f"token {name!r} exists already; remove it first (`serve token remove {name}`)")
            token = new_token()
            entry = StoredToken(name=name, sha256=digest(token), created=datetime.now(UTC))
            self._write(document.model_copy(update={"tokens": (*document.tokens, entry)}))
        return token

    def remove(self, name: str) -> None:
        with self._locked() as document:
            kept = tuple(t for t in document.tokens if t.name != name)
            if len(kept) == len(document.tokens):
                known = ", ".join(t.name for t in document.tokens) or "none"
                raise TokenError(f"no token named {name!r} (tokens: {known})")
            self._write(document.model_copy(update={"tokens": kept}))

    def list(self) -> list[TokenInfo]:
        loaded = _read(self.path)
        return [TokenInfo(t.name, t.created) for t in (loaded[0].tokens if loaded else ())]
