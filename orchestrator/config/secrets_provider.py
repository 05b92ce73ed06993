"""Pulumi's passphrase secrets provider, byte-compatible with the Pulumi CLI.

Mirrors pulumi/pulumi `sdk/go/common/resource/config/crypt.go` and `pkg/secrets/passphrase`:

- key = PBKDF2-HMAC-SHA256(passphrase, salt, 1,000,000 iterations, 32 bytes);
- a value is `v1:<nonce b64>:<ciphertext+tag b64>` (AES-256-GCM, 12-byte random nonce, no AAD,
  standard padded base64);
- a stack's `encryptionsalt` is `v1:<8-byte salt b64>:` followed by the encryption of `pulumi`;
  a passphrase is correct when that decrypts to `pulumi`;
- a passphrase file's content is trimmed of surrounding whitespace (as `PULUMI_CONFIG_PASSPHRASE_FILE`).

This lets the tools read and write a stack's `secure:` config offline, so no secret ever goes on
a `pulumi config set` command line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.config import key_cache
from orchestrator.config.private_files import read_private_file
from orchestrator.core.errors import ConfigError, CryptoError, EdgeError, PassphraseError, SetupError

PBKDF2_ITERATIONS = 1_000_000
KEY_BYTES = 32
SALT_BYTES = 8
NONCE_BYTES = 12
CHECK_PLAINTEXT = "pulumi"
VALUE_VERSION = "v1"


@lru_cache(maxsize=1024)
def _derive(passphrase: str, salt: bytes) -> tuple[bytes, bool]:
    """(key, found in the key cache). 1M PBKDF2 rounds cost ~0.25 s per stack salt: derive once per
    (passphrase, salt) per process, and across commands through the kernel keyring (key_cache)."""
    cached = key_cache.lookup(passphrase, salt, PBKDF2_ITERATIONS, KEY_BYTES)
    if cached is not None:
        return cached, True
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), salt, PBKDF2_ITERATIONS, KEY_BYTES), False


@lru_cache(maxsize=1024)
def _remember(passphrase: str, salt: bytes, key: bytes) -> None:
    # Only a key that passed the stack's own check (or made its salt) is cached, once per process.
    key_cache.store(passphrase, salt, PBKDF2_ITERATIONS, key)


def _b64decode(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _encrypt(key: bytes, plaintext: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    ct = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), None)
    return f"{VALUE_VERSION}:{base64.b64encode(nonce).decode()}:{base64.b64encode(ct).decode()}"


def _split_value(value: str, where: str) -> tuple[bytes, bytes]:
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 3:
        raise CryptoError(f"{where}: malformed secure value (expected v1:<nonce>:<ciphertext>)")
    if parts[0] != VALUE_VERSION:
        raise CryptoError(f"{where}: unknown secure value version (expected {VALUE_VERSION})")
    try:
        nonce, ct = _b64decode(parts[1]), _b64decode(parts[2])
    except (binascii.Error, ValueError):
        raise CryptoError(f"{where}: secure value is not valid base64") from None
    if len(nonce) != NONCE_BYTES:
        raise CryptoError(f"{where}: secure value nonce size is incorrect")
    return nonce, ct


def _open(key: bytes, nonce: bytes, ct: bytes) -> str | None:
    """The plaintext, or None when the value does not authenticate under this key."""
    try:
        data = AESGCM(key).decrypt(nonce, ct, None)
    except InvalidTag:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _parse_salt(encryption_salt: str, source: str) -> tuple[bytes, str]:
    parts = encryption_salt.split(":", 2) if isinstance(encryption_salt, str) else []
    if len(parts) != 3 or parts[0] != VALUE_VERSION:
        raise CryptoError(f"{source}: malformed encryptionsalt (expected v1:<salt b64>:v1:<nonce>:<ct>)")
    try:
        salt = _b64decode(parts[1])
    except (binascii.Error, ValueError):
        raise CryptoError(f"{source}: encryptionsalt salt is not valid base64") from None
    return salt, parts[2]


class PassphraseCrypter:
    """Encrypts and decrypts one stack's `secure:` values, as the Pulumi CLI does."""

    def __init__(self, passphrase: str, encryption_salt: str, *, source: str | os.PathLike[str] = "stack") -> None:
        self.source = str(source)
        """What errors name: normally the stack file's path."""
        self.encryption_salt = encryption_salt
        salt, check_value = _parse_salt(encryption_salt, self.source)
        nonce, ct = _split_value(check_value, f"{self.source}: encryptionsalt")
        self._key, cached = _derive(passphrase, salt)
        if _open(self._key, nonce, ct) != CHECK_PLAINTEXT:
            raise PassphraseError(
                f"{self.source}: incorrect passphrase for this stack's encryptionsalt "
                "(check the file named by PULUMI_CONFIG_PASSPHRASE_FILE)"
            )
        if not cached:
            _remember(passphrase, salt, self._key)

    def encrypt(self, plaintext: str) -> str:
        """A fresh `v1:<nonce>:<ct>` value (random nonce: two encryptions differ, as in Pulumi)."""
        return _encrypt(self._key, plaintext)

    def decrypt(self, value: str, *, key_path: str | None = None) -> str:
        """Decrypt a `secure:` value; `key_path` only sharpens the error message."""
        where = self.source if key_path is None else f"{self.source}: {key_path}"
        nonce, ct = _split_value(value, where)
        plaintext = _open(self._key, nonce, ct)
        if plaintext is None:
            raise CryptoError(
                f"{where}: secure value does not decrypt with this stack's key (copied from another stack, or tampered)"
            )
        return plaintext

    def __repr__(self) -> str:
        return f"PassphraseCrypter(source={self.source!r})"


def new_encryption_salt(passphrase: str) -> str:
    """A new stack's `encryptionsalt` line for this passphrase (random 8-byte salt)."""
    salt = os.urandom(SALT_BYTES)
    key, _ = _derive(passphrase, salt)
    _remember(passphrase, salt, key)
    check = _encrypt(key, CHECK_PLAINTEXT)
    return f"{VALUE_VERSION}:{base64.b64encode(salt).decode()}:{check}"


def forget_cached_key(encryption_salt: str) -> None:
    """Drop this salt's derived key from the kernel keyring (key_cache), e.g. once the stacks it
    opens and their passphrase are deleted: nobody can use it any more, and it holds quota."""
    salt, _ = _parse_salt(encryption_salt, "encryptionsalt")
    key_cache.forget(salt, PBKDF2_ITERATIONS)


def read_passphrase_file(path: str | os.PathLike[str]) -> str:
    """The passphrase in an owner-only file (config/private_files.py), trimmed like PULUMI_CONFIG_PASSPHRASE_FILE."""
    file = Path(path)
    raw = read_private_file(file, "passphrase file")
    assert raw is not None
    try:
        passphrase = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"passphrase file {file} is not UTF-8 text") from None
    if not passphrase:
        raise ConfigError(f"passphrase file {file} is empty")
    return passphrase


PASSPHRASE_ENV = "PULUMI_CONFIG_PASSPHRASE"
"""Read by the Pulumi CLI *before* PULUMI_CONFIG_PASSPHRASE_FILE, even when set to the empty string."""


def check_passphrase_env(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> None:
    """Refuse an inherited PULUMI_CONFIG_PASSPHRASE that differs from the passphrase file.

    pulumi/pulumi pkg/secrets/passphrase/manager.go `readPassphrase`: the variable wins whenever it
    is set (`os.LookupEnv`), verbatim; the file is only read when it is unset, and trimmed. The
    Automation API passes our environment on to every CLI it starts. So with both set, the CLI may
    unlock stacks with another passphrase than the one our tools encrypt with. Equal (the variable
    equals the file's trimmed content) is harmless; anything else is refused, naming both sources
    and neither value.
    """
    env = os.environ if environ is None else environ
    if PASSPHRASE_ENV not in env:
        return
    state = "set to the empty string" if not env[PASSPHRASE_ENV] else "set"
    try:
        same = hmac.compare_digest(env[PASSPHRASE_ENV].encode(), read_passphrase_file(path).encode())
    except EdgeError as exc:
        raise SetupError(f"{PASSPHRASE_ENV} is {state} and the passphrase file cannot be compared: {exc}") from None
    if not same:
        raise SetupError(
            f"{PASSPHRASE_ENV} is {state} and differs from the passphrase file {path}; the Pulumi CLI reads the "
            f"variable first, so it would unlock stacks with another passphrase: unset {PASSPHRASE_ENV}"
        )


def read_state_passphrase(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> str:
    """The state passphrase from its file, after `check_passphrase_env`."""
    check_passphrase_env(path, environ)
    return read_passphrase_file(path)
