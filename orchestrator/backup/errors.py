"""Errors of backups (all `EdgeError`s, so the CLI prints them as `Error: …`, exit 1)."""

from __future__ import annotations

from orchestrator.core.errors import EdgeError


class BackupError(EdgeError):
    """A backup could not be made, read, verified or restored; names the backup/object at fault."""


class WrongPassphraseError(BackupError):
    """The backup passphrase does not derive the key a backup was made with."""
