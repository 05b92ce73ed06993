"""Backups in a bucket: create, list, verify, restore and prune, with an upload order that fails safe.

Layout: `<kind>/<backup_id>/chunk-NNNNNN` objects, then `<kind>/<backup_id>/manifest` written
LAST. A backup counts only when its manifest exists, authenticates under the backup passphrase,
and every chunk it lists is present at its recorded size; so an upload cut off at any point
leaves nothing that `list` or `verify` accepts. Pruning deletes the manifest first for the
same reason. `kind` separates the state snapshots ("state") from the passphrase escrow ("escrow").
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.backup.crypto import (
    BackupKey,
    KdfParams,
    ManifestHeader,
    chunk_aad,
    new_key,
    open_manifest,
    seal_manifest,
)
from orchestrator.backup.errors import BackupError, WrongPassphraseError
from orchestrator.backup.snapshot import Entry, SnapshotReader, SnapshotWriter, Source, collect
from orchestrator.backup.store import ObjectStore

DEFAULT_CHUNK_SIZE = 8 << 20
BACKUP_ID = re.compile(r"(\d{8}T\d{6}Z)-[0-9a-f]{8}")
KINDS = ("state", "escrow")
INCOMPLETE_GRACE = timedelta(hours=24)
"""An upload without a manifest younger than this may still be running; older ones are debris."""


class ChunkRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    size: int
    sha256: str
    """SHA-256 of the stored (sealed) object, checked before it is decrypted."""


class Manifest(BaseModel):
    """The encrypted body of a manifest: what the backup holds and where its bytes are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backup_id: str
    kind: str
    created_at: datetime
    total_size: int
    entries: list[Entry]
    chunks: list[ChunkRef]

    @property
    def file_count(self) -> int:
        return sum(1 for e in self.entries if e.type == "file")


class BackupInfo(BaseModel):
    """One backup as `list` sees it."""

    backup_id: str
    status: Literal["complete", "incomplete", "invalid"]
    created_at: datetime | None = None
    files: int = 0
    total_size: int = 0
    stored_size: int = 0
    problem: str | None = None


@dataclass(frozen=True)
class Retention:
    """Keep a complete backup if it is among the newest `keep_last` OR younger than `keep_days`."""

    keep_last: int | None = None
    keep_days: float | None = None

    def __post_init__(self) -> None:
        if self.keep_last is None and self.keep_days is None:
            raise BackupError("a retention policy needs keep-last and/or keep-days")
        if self.keep_last is not None and self.keep_last < 1:
            raise BackupError("keep-last must be at least 1: the newest complete backup is never pruned")
        if self.keep_days is not None and self.keep_days <= 0:
            raise BackupError("keep-days must be positive")


class PruneResult(BaseModel):
    deleted: list[str]
    kept: list[str]
    debris_deleted: list[str]
    """Interrupted uploads (no manifest) older than the grace period."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BackupRepository:
    """Backups of one kind in one store, sealed under one backup passphrase."""

    def __init__(
        self,
        store: ObjectStore,
        kind: str,
        passphrase: bytes,
        *,
        kdf: KdfParams | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown backup kind {kind!r}")
        if not passphrase:
            raise BackupError("the backup passphrase is empty")
        self._store = store
        self.kind = kind
        self._passphrase = passphrase
        self._kdf = kdf or KdfParams()
        self._chunk_size = chunk_size
        self._clock = clock
        self._opened: dict[str, tuple[Manifest, BackupKey]] = {}
        """Manifests already authenticated by this instance: each costs a full scrypt derivation, and
        `verify latest` would otherwise derive every key in `list` and the chosen one again."""

    # -- keys ---------------------------------------------------------------------------------

    def _manifest_key(self, backup_id: str) -> str:
        return f"{self.kind}/{backup_id}/manifest"

    def _chunk_key(self, backup_id: str, index: int) -> str:
        return f"{self.kind}/{backup_id}/chunk-{index:06d}"

    def _what(self, backup_id: str) -> str:
        return f"{self.kind} backup {backup_id}"

    # -- create -------------------------------------------------------------------------------

    def create(self, sources: list[Source]) -> Manifest:
        collected = collect(sources)  # fails on a missing source before anything is uploaded
        now = self._clock()
        backup_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        key, salt = new_key(self._passphrase, self._kdf)
        reader = SnapshotReader(collected, self._chunk_size)
        uploaded: list[ChunkRef] = []
        try:
            for index, plaintext in enumerate(reader.chunks()):
                sealed = key.seal(plaintext, chunk_aad(self.kind, backup_id, index))
                ref = ChunkRef(
                    key=self._chunk_key(backup_id, index),
                    size=len(sealed),
                    sha256=hashlib.sha256(sealed).hexdigest(),
                )
                self._store.put(ref.key, sealed)
                uploaded.append(ref)
            manifest = Manifest(
                backup_id=backup_id,
                kind=self.kind,
                created_at=now,
                total_size=reader.total_size,
                entries=reader.entries,
                chunks=uploaded,
            )
            header = ManifestHeader(
                kind=self.kind, backup_id=backup_id, salt=salt.hex(), kdf=self._kdf, key_check=key.key_check
            )
            # The manifest goes last: until this PUT lands, the backup does not exist for anyone.
            self._store.put(
                self._manifest_key(backup_id), seal_manifest(key, header, manifest.model_dump_json().encode())
            )
        except BaseException:
            self._discard(backup_id, [ref.key for ref in uploaded])
            raise
        return manifest

    def _discard(self, backup_id: str, keys: list[str]) -> None:
        # Best effort: if storage is unreachable the chunks stay behind as manifest-less debris,
        # which nothing treats as a backup and prune removes after the grace period.
        for key in keys:
            try:
                self._store.delete(key)
            except BackupError:
                return

    # -- read ---------------------------------------------------------------------------------

    def _objects(self) -> dict[str, dict[str, int]]:
        """backup_id -> {key: size} for everything stored under this kind."""
        grouped: dict[str, dict[str, int]] = {}
        for key, size in self._store.list(f"{self.kind}/"):
            parts = key.split("/")
            if len(parts) == 3 and BACKUP_ID.fullmatch(parts[1]):
                grouped.setdefault(parts[1], {})[key] = size
        return grouped

    def load(self, backup_id: str) -> Manifest:
        """Open and authenticate a backup's manifest (downloads nothing else)."""
        return self._open(backup_id)[0]

    def _open(self, backup_id: str) -> tuple[Manifest, BackupKey]:
        if backup_id not in self._opened:
            self._opened[backup_id] = self._authenticate(backup_id)
        return self._opened[backup_id]

    def _authenticate(self, backup_id: str) -> tuple[Manifest, BackupKey]:
        if not BACKUP_ID.fullmatch(backup_id):
            raise BackupError(f"{backup_id!r} is not a backup id (expected e.g. 20250101T120000Z-0a1b2c3d)")
        what = self._what(backup_id)
        blob = self._store.get(self._manifest_key(backup_id))
        if blob is None:
            raise BackupError(f"{what} has no manifest: it does not exist or its upload never finished")
        header, key, body = open_manifest(blob, self._passphrase, f"manifest of {what}")
        if header.backup_id != backup_id or header.kind != self.kind:
            raise BackupError(f"manifest of {what} was copied from {header.kind} backup {header.backup_id}")
        try:
            manifest = Manifest.model_validate_json(body)
        except ValidationError as exc:
            raise BackupError(f"manifest of {what} is malformed: {exc.errors()[0]['msg']}") from None
        if manifest.backup_id != backup_id or manifest.kind != self.kind:
            raise BackupError(f"manifest of {what} describes another backup")
        return manifest, key

    def list(self) -> list[BackupInfo]:
        """Every backup of this kind, newest first, with whether it can be restored."""
        infos: list[BackupInfo] = []
        wrong_passphrase = 0
        for backup_id, objects in sorted(self._objects().items(), reverse=True):
            stored = sum(objects.values())
            if self._manifest_key(backup_id) not in objects:
                infos.append(
                    BackupInfo(
                        backup_id=backup_id,
                        status="incomplete",
                        stored_size=stored,
                        problem="no manifest: the upload did not finish",
                    )
                )
                continue
            try:
                manifest = self.load(backup_id)
                missing = [c.key for c in manifest.chunks if objects.get(c.key) != c.size]
                if missing:
                    raise BackupError(f"{self._what(backup_id)}: object {missing[0]} is missing or resized")
            except BackupError as exc:
                wrong_passphrase += isinstance(exc, WrongPassphraseError)
                infos.append(BackupInfo(backup_id=backup_id, status="invalid", stored_size=stored, problem=str(exc)))
                continue
            infos.append(
                BackupInfo(
                    backup_id=backup_id,
                    status="complete",
                    created_at=manifest.created_at,
                    files=manifest.file_count,
                    total_size=manifest.total_size,
                    stored_size=stored,
                )
            )
        with_manifest = sum(1 for i in infos if i.status != "incomplete")
        if with_manifest and wrong_passphrase == with_manifest:
            raise WrongPassphraseError(
                f"the backup passphrase opens none of the {with_manifest} {self.kind} backup(s) "
                "in the bucket: wrong backup passphrase file?"
            )
        return infos

    def latest(self) -> BackupInfo | None:
        return next((i for i in self.list() if i.status == "complete"), None)

    def verify(self, backup_id: str) -> Manifest:
        """Download every object and check every hash and tag, writing nothing."""
        return self._replay(backup_id, None)

    def restore(self, backup_id: str, dest: Path) -> Manifest:
        """Restore into `dest`, which must be an empty directory or not exist yet.

        Everything is written into a private staging directory beside `dest` and moved into place
        only once every file has matched its hash, so a failure leaves `dest` untouched.
        """
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise BackupError(f"restore target {dest} is not an empty directory; refusing to overwrite")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".clawdbot-restore-", dir=dest.parent))
        try:
            manifest = self._replay(backup_id, staging)
            if dest.exists():
                for child in staging.iterdir():
                    child.rename(dest / child.name)
                staging.rmdir()
            else:
                staging.rename(dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return manifest

    def _replay(self, backup_id: str, target: Path | None) -> Manifest:
        manifest, key = self._open(backup_id)
        what = self._what(backup_id)
        writer = SnapshotWriter(target, manifest.entries)
        for index, ref in enumerate(manifest.chunks):
            sealed = self._store.get(ref.key)
            if sealed is None:
                raise BackupError(f"{what}: object {ref.key} is missing")
            if len(sealed) != ref.size or hashlib.sha256(sealed).hexdigest() != ref.sha256:
                raise BackupError(f"{what}: object {ref.key} does not match its manifest hash")
            writer.feed(key.open(sealed, chunk_aad(self.kind, backup_id, index), f"object {ref.key}"))
        writer.finish()
        return manifest

    # -- prune --------------------------------------------------------------------------------

    def prune(self, policy: Retention) -> PruneResult:
        """Delete complete backups outside the policy, and stale debris; never anything unreadable."""
        infos = self.list()  # raises on a wrong passphrase: then nothing is deleted
        now = self._clock()
        complete = [i for i in infos if i.status == "complete"]
        keep: set[str] = set()
        if policy.keep_last is not None:
            keep.update(i.backup_id for i in complete[: policy.keep_last])
        if policy.keep_days is not None:
            horizon = now - timedelta(days=policy.keep_days)
            keep.update(i.backup_id for i in complete if i.created_at and i.created_at >= horizon)
        doomed = [i.backup_id for i in complete if i.backup_id not in keep]
        debris = [
            i.backup_id for i in infos if i.status == "incomplete" and now - _id_time(i.backup_id) > INCOMPLETE_GRACE
        ]
        objects = self._objects()
        for backup_id in doomed + debris:
            keys = sorted(objects.get(backup_id, {}))
            manifest_key = self._manifest_key(backup_id)
            # Manifest first: a deletion cut short leaves debris, never a broken "complete" backup.
            if manifest_key in keys:
                self._store.delete(manifest_key)
            for key in keys:
                if key != manifest_key:
                    self._store.delete(key)
        return PruneResult(
            deleted=doomed, kept=[i.backup_id for i in complete if i.backup_id in keep], debris_deleted=debris
        )


def _id_time(backup_id: str) -> datetime:
    match = BACKUP_ID.fullmatch(backup_id)
    assert match is not None  # only ids that matched are listed
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
