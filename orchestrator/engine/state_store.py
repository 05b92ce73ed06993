"""The Pulumi state as the fleet reads it without the engine: a directory, or a folder of an R2 bucket.

Lock recovery, pending operations, deployed outputs and the deployed-record fingerprint read the
DIY backend's files directly (`engine/locks.py`), so they see the same layout whether the backend
is `file://<dir>` or `s3://<bucket>/<folder>?endpoint=…` (config/state_backend.py). Keys are
slash paths relative to the backend root (`.pulumi/stacks/<project>/<stack>.json`), as the CLI's
gocloud bucket names them, and the S3 side applies the URL's folder exactly as the CLI's
`blob.PrefixedBucket` does (pulumi `pkg/backend/diy/backend.go`).

S3 credentials come from boto3's standard chain (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`,
the same variables the Pulumi CLI reads); they never pass through this code. Errors name the
object, never a signature or key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from orchestrator.config.atomic_file import make_private_dirs
from orchestrator.config.settings import Settings
from orchestrator.config.state_backend import StateBackend
from orchestrator.core.errors import SetupError


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
        path = self.root / key
        if not path.is_file():
            return None
        info = path.stat()
        return f"{info.st_size}:{info.st_mtime_ns}"

    def where(self, key: str) -> str:
        return str(self.root / key)


@dataclass
class BucketState:
    """A folder of an S3-compatible bucket (R2): the shared backend of several nodes."""

    backend: StateBackend
    _client: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._client is None:
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

    def read(self, key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self.backend.path, Key=self._object(key))
            body: bytes = response["Body"].read()
            return body
        except ClientError as exc:
            if _missing(exc):
                return None
            raise self._error("read", key, exc) from None
        except BotoCoreError as exc:
            raise self._error("read", key, exc) from None

    def keys(self, folder: str) -> list[str]:
        prefix = self._object(folder) + "/"
        strip = len(self._object(""))
        found: list[str] = []
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.backend.path, Prefix=prefix, Delimiter="/"):
                found += [item["Key"][strip:] for item in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise self._error("list", folder + "/", exc) from None
        return sorted(found)

    def walk(self, folder: str) -> list[str]:
        """Keys of every object below `folder`, at any depth, sorted."""
        prefix = self._object(folder) + "/"
        strip = len(self._object(""))
        found: list[str] = []
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.backend.path, Prefix=prefix):
                found += [item["Key"][strip:] for item in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise self._error("list", folder + "/", exc) from None
        return sorted(found)

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
        try:
            self._client.delete_object(Bucket=self.backend.path, Key=self._object(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._error("delete", key, exc) from None
        return True

    def fingerprint(self, key: str) -> str | None:
        try:
            head = self._client.head_object(Bucket=self.backend.path, Key=self._object(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise self._error("read", key, exc) from None
        except BotoCoreError as exc:
            raise self._error("read", key, exc) from None
        return f"{head.get('ContentLength', '?')}:{head.get('ETag', '?')}"

    def _error(self, action: str, key: str, exc: Exception) -> SetupError:
        if isinstance(exc, NoCredentialsError):
            return SetupError(
                f"cannot {action} {self.where(key)}: no R2 credentials (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY to the state bucket's key pair; docs/cluster.md)"
            )
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            detail = f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
        else:
            detail = type(exc).__name__
        return SetupError(f"cannot {action} {self.where(key)}: {detail}")


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in ("NoSuchKey", "404", "NotFound")


def open_state(backend: StateBackend) -> StateStore:
    """The store behind a checked backend URL."""
    if backend.kind == "file":
        return DirectoryState(Path(backend.path))
    return BucketState(backend)


def state_of(settings: Settings) -> StateStore:
    """The store of the fleet's backend (`CLAWDBOT_STATE_BACKEND`, else the state directory)."""
    return open_state(settings.backend)
