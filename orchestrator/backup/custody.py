"""Passphrase custody: the backup passphrase must not be the state passphrase.

A state backup holds the stack files whose secrets the state passphrase opens, and the escrow
backup holds the state passphrase itself; sealing either under that same passphrase would make
the backup worthless as a separate line of defence (and the escrow circular). Both files are
read with the usual 0600 checks and compared in constant time; neither value is ever returned
or printed.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from orchestrator.config.secrets_provider import read_passphrase_file
from orchestrator.core.errors import BackupError, EdgeError


def same_passphrase(first: str, second: str) -> bool:
    """Constant-time equality of two passphrases (as trimmed by read_passphrase_file)."""
    return hmac.compare_digest(first.encode("utf-8"), second.encode("utf-8"))


def state_passphrase_or_none(state_file: Path) -> str | None:
    """The state passphrase, or None when its file is unusable (doctor reports that on its own)."""
    try:
        return read_passphrase_file(state_file)
    except EdgeError:
        return None


def reused_passphrase_message(backup_file: Path, state_file: Path) -> str:
    return (
        f"backup passphrase file {backup_file} holds the same passphrase as the state passphrase file "
        f"{state_file}; they must differ. Write a new backup passphrase (head -c 32 /dev/urandom | base64 "
        f"> {backup_file}, mode 0600), keep the old file to read older backups, and copy the new one off "
        "this machine"
    )


def ensure_distinct(backup_passphrase: str, backup_file: Path, state_file: Path) -> None:
    """Refuse (BackupError) a backup passphrase equal to the state passphrase."""
    state = state_passphrase_or_none(state_file)
    if state is not None and same_passphrase(backup_passphrase, state):
        raise BackupError(reused_passphrase_message(backup_file, state_file))
