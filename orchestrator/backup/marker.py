"""A local record of the last backup that completed, so `doctor` can judge freshness offline."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from orchestrator.backup.errors import BackupError
from orchestrator.config.atomic_file import write_atomically


class LastBackup(BaseModel):
    backup_id: str
    created_at: datetime
    bucket: str


def write_marker(path: Path, record: LastBackup) -> None:
    """Replace the marker atomically (temp file + rename), so a crash never leaves half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, record.model_dump_json())


def read_marker(path: Path) -> LastBackup | None:
    if not path.exists():
        return None
    try:
        return LastBackup.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise BackupError(f"backup marker {path} is unreadable: {type(exc).__name__}") from None
