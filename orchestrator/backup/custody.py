"""Passphrase custody: the backup passphrase must not be the state passphrase.

A state backup holds the stack files whose secrets the state passphrase opens, and the escrow
backup holds the state passphrase itself; sealing either under that same passphrase would make
the backup worthless as a separate line of defence (and the escrow circular). Both files are
read with the usual 0600 checks and compared in constant time; neither value is ever returned
or printed.
"""

from __future__ import annotations

import hmac
import itertools
import os
import shlex
from pathlib import Path

from orchestrator.backup.errors import BackupError
from orchestrator.config.secrets_provider import read_passphrase_file
from orchestrator.core.errors import EdgeError


def same_passphrase(first: str, second: str) -> bool:
    """Constant-time equality of two passphrases (as trimmed by read_passphrase_file)."""
    return hmac.compare_digest(first.encode("utf-8"), second.encode("utf-8"))


def state_passphrase_or_none(state_file: Path) -> str | None:
    """The state passphrase, or None when its file is unusable (doctor reports that on its own)."""
    try:
        return read_passphrase_file(state_file)
    except EdgeError:
        return None


def fresh_path(beside: Path, stem: str, avoid: tuple[Path, ...]) -> Path:
    """`<dir of beside>/<stem>-N` for the first N where nothing is (no file, no link, none of `avoid`)."""
    taken = {os.path.realpath(p) for p in avoid}
    for n in itertools.count(2):
        candidate = beside.parent / f"{stem}-{n}"
        if os.path.realpath(candidate) not in taken and not os.path.lexists(candidate):
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def reused_passphrase_message(backup_file: Path, state_file: Path) -> str:
    """What to do about a backup passphrase equal to the state passphrase, without losing either.

    Often the two settings name one file (or a link to it): advice to write a new passphrase
    into the backup file would then overwrite the state passphrase, and every stack's secrets
    with it. So the advice never writes into an existing file: the shell's noclobber (`set -C`)
    refuses the redirect if its target exists, `mv -n` never replaces one, and every target is a
    fresh path. The state passphrase file is never touched; the old backup passphrase is kept
    (it still opens older backups).
    """
    new = shlex.quote(str(fresh_path(backup_file, "backup-passphrase", (backup_file, state_file))))
    if _same_file(backup_file, state_file):
        return (
            f"backup passphrase file {backup_file} is the state passphrase file {state_file}; they must differ. "
            f"Leave that file alone (it opens every stack's secrets): create a new backup passphrase with "
            f"`(umask 077 && set -C && head -c 32 /dev/urandom | base64 > {new})`, set "
            f"CLAWDBOT_BACKUP_PASSPHRASE_FILE={new} (in /etc/clawdbot/clawdbot.env on a VPS) and copy the new "
            "file off this machine"
        )
    current = shlex.quote(str(backup_file))
    kept = shlex.quote(str(fresh_path(backup_file, f"{backup_file.name}.reused", (backup_file, state_file))))
    return (
        f"backup passphrase file {backup_file} holds the same passphrase as the state passphrase file "
        f"{state_file}; they must differ. Leave {state_file} alone: move the backup passphrase aside (older "
        f"backups need it) and create a new one with `(umask 077 && set -C && mv -n {current} {kept} && "
        f"head -c 32 /dev/urandom | base64 > {current})`, then copy the new file off this machine"
    )


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


def ensure_distinct(backup_passphrase: str, backup_file: Path, state_file: Path) -> None:
    """Refuse (BackupError) a backup passphrase equal to the state passphrase."""
    state = state_passphrase_or_none(state_file)
    if state is not None and same_passphrase(backup_passphrase, state):
        raise BackupError(reused_passphrase_message(backup_file, state_file))
