"""Backup encryption: a scrypt-derived AES-256-GCM key per backup, and the sealed manifest format.

Every object of a backup is sealed with the same key, derived from the backup passphrase and
the salt in that backup's manifest header, so a chunk is useless without its manifest. The
manifest header (salt, KDF cost, backup id) stays readable so the key can be derived, and is
authenticated as GCM associated data, so it cannot be altered either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.backup.errors import BackupError, WrongPassphraseError

MANIFEST_MAGIC = b"CLAWDBOT-BACKUP-MANIFEST\x001\n"
NONCE_BYTES = 12
SALT_BYTES = 16
MAX_KDF_MEMORY = 256 << 20
"""Bytes scrypt may need (128·n·r) for one derivation; a header asking for more is refused unread."""


class KdfParams(BaseModel):
    """scrypt cost. The default follows OWASP's minimum (N=2^17, r=8, p=1); tests pass lower ones.

    The cost of every backup comes from its manifest header, which anyone with write access to the
    bucket can forge before the key is derived (the header is authenticated only by that key). So
    these bounds are what keeps a forged header from making `list`, `prune` or `create` allocate
    gigabytes: scrypt needs 128·n·r bytes, capped at MAX_KDF_MEMORY (twice the default's 128 MiB),
    and with p <= 2 the time is at most four times the default's.
    """

    model_config = ConfigDict(frozen=True)

    n: int = Field(default=2**17, ge=2**10, le=2**20)
    """CPU/memory cost, a power of two."""
    r: int = Field(default=8, ge=1, le=16)
    """Block size."""
    p: int = Field(default=1, ge=1, le=2)
    """Parallelism (OpenSSL runs the lanes one after another: it multiplies time, not memory)."""

    @field_validator("n")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("n must be a power of two")
        return value

    @model_validator(mode="after")
    def _bounded_cost(self) -> KdfParams:
        memory = 128 * self.n * self.r
        if memory > MAX_KDF_MEMORY:
            raise ValueError(
                f"scrypt n={self.n}, r={self.r} needs {memory >> 20} MiB, over the {MAX_KDF_MEMORY >> 20} MiB cap"
            )
        return self


class ManifestHeader(BaseModel):
    """The cleartext, authenticated part of a manifest: what is needed to derive the key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = 1
    kind: str
    backup_id: str
    salt: str
    """Hex salt for scrypt, fresh per backup."""
    kdf: KdfParams
    key_check: str
    """Hex SHA-256 of the verifier half of the scrypt output: tells a wrong passphrase from tampering."""


class BackupKey:
    """The AES key of one backup plus the verifier that recognises the passphrase."""

    def __init__(self, passphrase: bytes, salt: bytes, params: KdfParams) -> None:
        material = Scrypt(salt=salt, length=64, n=params.n, r=params.r, p=params.p).derive(passphrase)
        self._aead = AESGCM(material[:32])
        self.key_check = hashlib.sha256(material[32:]).hexdigest()

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        # Random 96-bit nonces are safe here: one key seals a few hundred objects at most.
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes, what: str) -> bytes:
        """Decrypt and authenticate; `what` names the object in the error."""
        if len(sealed) < NONCE_BYTES + 16:
            raise BackupError(f"{what} is truncated ({len(sealed)} bytes)")
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except InvalidTag:
            raise BackupError(f"{what} failed authentication: it was altered or belongs elsewhere") from None


def new_key(passphrase: bytes, params: KdfParams) -> tuple[BackupKey, bytes]:
    salt = os.urandom(SALT_BYTES)
    return BackupKey(passphrase, salt, params), salt


def chunk_aad(kind: str, backup_id: str, index: int) -> bytes:
    # Binds each chunk to its backup and position, so chunks cannot be swapped or reordered.
    return f"clawdbot-backup/v1/{kind}/{backup_id}/chunk/{index}".encode()


def seal_manifest(key: BackupKey, header: ManifestHeader, body: bytes) -> bytes:
    header_bytes = header.model_dump_json().encode()
    prefix = MANIFEST_MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes
    return prefix + key.seal(body, prefix)


def read_manifest_header(blob: bytes, what: str) -> tuple[ManifestHeader, bytes, bytes]:
    """Split a sealed manifest into (header, authenticated prefix, sealed body) without decrypting."""
    if not blob.startswith(MANIFEST_MAGIC) or len(blob) < len(MANIFEST_MAGIC) + 4:
        raise BackupError(f"{what} is not a clawdbot backup manifest")
    start = len(MANIFEST_MAGIC)
    (length,) = struct.unpack(">I", blob[start : start + 4])
    end = start + 4 + length
    if end > len(blob):
        raise BackupError(f"{what} is truncated")
    try:
        header = ManifestHeader.model_validate(json.loads(blob[start + 4 : end]))
        bytes.fromhex(header.salt)
    except ValidationError as exc:
        # Checked before any key derivation: a forged KDF cost never reaches scrypt.
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "header"
        raise BackupError(f"{what} has an unreadable header: {where}: {error['msg']}") from None
    except ValueError as exc:
        raise BackupError(f"{what} has an unreadable header: {_first_line(exc)}") from None
    return header, blob[:end], blob[end:]


def open_manifest(blob: bytes, passphrase: bytes, what: str) -> tuple[ManifestHeader, BackupKey, bytes]:
    """Derive the key from the header, check it is the right passphrase, then decrypt the body."""
    header, prefix, sealed = read_manifest_header(blob, what)
    key = BackupKey(passphrase, bytes.fromhex(header.salt), header.kdf)
    if not hmac.compare_digest(key.key_check, header.key_check):
        raise WrongPassphraseError(f"{what}: the backup passphrase does not open this backup (wrong passphrase file?)")
    return header, key, key.open(sealed, prefix, what)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
