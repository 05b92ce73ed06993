"""The Pulumi state as the fleet reads it without the engine: a directory, or a folder of an R2 bucket.

Lock recovery, pending operations, deployed outputs and the deployed-record fingerprint read the
DIY backend's files directly (`engine/locks.py`), so they see the same layout whether the backend
is `file://<dir>` or `s3://<bucket>/<folder>?endpoint=…` (config/state_backend.py). Keys are
slash paths relative to the backend root (`.pulumi/stacks/<project>/<stack>.json`), as the CLI's
gocloud bucket names them, and the S3 side applies the URL's folder exactly as the CLI's
`blob.PrefixedBucket` does (pulumi `pkg/backend/diy/backend.go`).

boto3 is imported only for a bucket, so a fleet run on a file backend does not pay for it.
S3 credentials come from boto3's standard chain (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`,
the same variables the Pulumi CLI reads); they never pass through this code. Errors name the
object, never a signature or key.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

from orchestrator.config.atomic_file import make_private_dirs
from orchestrator.config.settings import Settings
from orchestrator.config.state_backend import StateBackend
from orchestrator.core.errors import SetupError

T = TypeVar("T")


class StateStore(Protocol):
    """Read (and, for provably dead locks, delete) the files of a DIY backend."""

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        ...

    def keys(self, folder: str) -> list[str]:
        """Keys of the objects directly in `folder` (not below it), sorted."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the object; False when it was already gone."""
        ...

    def fingerprint(self, key: str) -> str | None:
        """Changes whenever the object is rewritten (size and mtime, or the ETag); None without it."""
        ...

    def where(self, key: str) -> str:
        """How an operator names the object: a path, or its s3:// URL."""
        ...


_NOT_THERE = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)
"""What `Path.is_file` takes for "not a file" rather than an error."""


@dataclass(frozen=True)
class DirectoryState:
    """The file backend: keys are paths under the state directory."""

    root: Path

    def read(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def keys(self, folder: str) -> list[str]:
        directory = self.root / folder
        if not directory.is_dir():
            return []
        return sorted(f"{folder}/{p.name}" for p in directory.iterdir() if p.is_file())

    def delete(self, key: str) -> bool:
        try:
            (self.root / key).unlink()
        except FileNotFoundError:
            return False
        return True

    def fingerprint(self, key: str) -> str | None:
        # One stat, where `is_file()` and then `stat()` took two (a fleet run asks for every stack, twice
        # after a re-render); the same answer: None for what is not a regular file, the errors
        # `Path.is_file` swallows swallowed alike (CPython 3.11 Lib/pathlib.py, _IGNORED_ERRNOS).
        try:
            info = os.stat(self.root / key)
        except OSError as exc:
            if exc.errno in _NOT_THERE:
                return None
            raise
        return f"{info.st_size}:{info.st_mtime_ns}" if stat.S_ISREG(info.st_mode) else None

    def where(self, key: str) -> str:
        return str(self.root / key)


@dataclass
class BucketState:
    """A folder of an S3-compatible bucket (R2): the shared backend of several nodes."""

    backend: StateBackend
    _client: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                s3={"addressing_style": "path"},
            )
            session = boto3.session.Session()  # a fresh one: the default session caches credentials
            self._client = session.client("s3", endpoint_url=self.backend.endpoint, region_name="auto", config=config)

    def _object(self, key: str) -> str:
        return f"{self.backend.prefix}/{key}" if self.backend.prefix else key

    def where(self, key: str) -> str:
        return f"s3://{self.backend.path}/{self._object(key)}"

    def _call(self, action: str, key: str, fn: Callable[[], T]) -> T:
        found = self._maybe(action, key, fn, absent_ok=False)
        assert found is not None
        return found

    def _maybe(self, action: str, key: str, fn: Callable[[], T], *, absent_ok: bool = True) -> T | None:
        """Run one S3 call: None for an absent object (if `absent_ok`), any other error one SetupError
        naming the object (botocore is imported here, as boto3 is)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return fn()
        except NoCredentialsError:
            raise SetupError(
                f"cannot {action} {self.where(key)}: no R2 credentials (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY to the state bucket's key pair; docs/cluster.md)"
            ) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if absent_ok and str(error.get("Code")) in ("NoSuchKey", "404", "NotFound"):
                return None
            detail = f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
            raise SetupError(f"cannot {action} {self.where(key)}: {detail}") from None
        except BotoCoreError as exc:
            raise SetupError(f"cannot {action} {self.where(key)}: {type(exc).__name__}") from None

    def _list(self, folder: str, *, deep: bool) -> list[str]:
        prefix = self._object(folder) + "/"
        strip = len(self._object(""))
        shape: dict[str, str] = {} if deep else {"Delimiter": "/"}

        def pages() -> list[str]:
            paginator = self._client.get_paginator("list_objects_v2")
            found: list[str] = []
            for page in paginator.paginate(Bucket=self.backend.path, Prefix=prefix, **shape):
                found += [item["Key"][strip:] for item in page.get("Contents", [])]
            return sorted(found)

        return self._call("list", folder + "/", pages)

    def read(self, key: str) -> bytes | None:
        def get() -> bytes:
            body: bytes = self._client.get_object(Bucket=self.backend.path, Key=self._object(key))["Body"].read()
            return body

        return self._maybe("read", key, get)

    def keys(self, folder: str) -> list[str]:
        return self._list(folder, deep=False)

    def walk(self, folder: str) -> list[str]:
        """Keys of every object below `folder`, at any depth, sorted."""
        return self._list(folder, deep=True)

    def copy_to(self, folder: str, dest: Path) -> int:
        """Download every object below `folder` to the same relative paths under `dest` (for a state
        backup: each object is read whole, as the CLI writes it whole); the number of objects."""
        keys = self.walk(folder)
        for key in keys:  # all checked before anything is written
            if ".." in PurePosixPath(key).parts or PurePosixPath(key).is_absolute():
                raise SetupError(f"refusing to copy {self.where(key)}: its key leaves the state folder")
        for key in keys:
            target = dest / key
            make_private_dirs(target.parent)
            data = self.read(key)
            if data is not None:
                target.write_bytes(data)
        return len(keys)

    def delete(self, key: str) -> bool:
        if self.fingerprint(key) is None:
            return False
        self._call("delete", key, lambda: self._client.delete_object(Bucket=self.backend.path, Key=self._object(key)))
        return True

    def fingerprint(self, key: str) -> str | None:
        def head() -> str:
            info = self._client.head_object(Bucket=self.backend.path, Key=self._object(key))
            return f"{info.get('ContentLength', '?')}:{info.get('ETag', '?')}"

        return self._maybe("read", key, head)


def open_state(backend: StateBackend) -> StateStore:
    """The store behind a checked backend URL."""
    if backend.kind == "file":
        return DirectoryState(Path(backend.path))
    return BucketState(backend)


def state_of(settings: Settings) -> StateStore:
    """The store of the fleet's backend (`CLAWDBOT_STATE_BACKEND`, else the state directory)."""
    return open_state(settings.backend)
