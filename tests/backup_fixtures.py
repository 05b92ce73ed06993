"""What the backup tests share: a fresh bucket on moto's S3 server, a repository with a cheap KDF, a clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.backup.crypto import KdfParams
from orchestrator.backup.repository import BackupRepository
from orchestrator.backup.store import S3Store

FAST_KDF = KdfParams(n=2**10, r=8, p=1)  # explicit low cost for tests only; production default is 2^17
PASS = b"correct horse battery staple"


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def repo(store: S3Store, passphrase: bytes = PASS, kind: str = "state", **kw: Any) -> BackupRepository:
    kw.setdefault("chunk_size", 1000)
    return BackupRepository(store, kind, passphrase, kdf=FAST_KDF, **kw)
