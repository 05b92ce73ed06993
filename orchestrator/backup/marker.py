"""A local record of the last backup that completed, so `doctor` can judge freshness offline."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from orchestrator.errors import BackupError


class LastBackup(BaseModel):
    backup_id: str
    created_at: datetime
    bucket: str


def write_marker(path: Path, record: LastBackup) -> None:
    """Replace the marker atomically (temp file + rename), so a crash never leaves half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".last-backup-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(record.model_dump_json())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_marker(path: Path) -> LastBackup | None:
    if not path.exists():
        return None
    try:
        return LastBackup.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise BackupError(f"backup marker {path} is unreadable: {type(exc).__name__}") from None
