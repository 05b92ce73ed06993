"""What the fleet deployed to each stack, kept in its work dir and read without starting the engine.

`FileDeployedStore` implements the fleet's `DeployedStore` port (orchestrator/fleet/ports.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from orchestrator.config.atomic_file import make_private_dirs, write_many_atomically
from orchestrator.config.settings import Settings
from orchestrator.core.drift import DriftReport
from orchestrator.engine.locks import state_fingerprint
from orchestrator.engine.state_store import state_of
from orchestrator.engine.workdirs import StackPaths, atomic_write
from orchestrator.fleet.ports import DeployedRecord, DriftRecord

log = logging.getLogger(__name__)


class FileDeployedStore:
    """Deployed records in each stack's work dir, validated against the state file's fingerprint."""

    def __init__(self, settings: Settings, project: str) -> None:
        self.settings = settings
        self.project = project
        self._state = state_of(settings)

    def paths(self, stack: str) -> StackPaths:
        return StackPaths.of(self.settings, stack)

    def state_fingerprint(self, stack: str) -> str | None:
        return state_fingerprint(self._state, self.project, stack)

    def get(self, stack: str) -> DeployedRecord | None:
        return self._read(self.paths(stack).record_file)

    def state_changed(self, record: DeployedRecord) -> bool:
        return self.state_fingerprint(record.stack) != record.state_fingerprint

    def put(self, record: DeployedRecord) -> DeployedRecord:
        final = record.model_copy(update={"state_fingerprint": self.state_fingerprint(record.stack)})
        atomic_write(self.paths(record.stack).record_file, final.model_dump_json(indent=2).encode())
        return final

    def put_many(self, records: Sequence[DeployedRecord], *, good: bool = False) -> None:
        """`put` for every record, and with `good` `mark_good` too, as one batch: one sync for the
        data and one for the renames instead of two fsyncs per file (`write_many_atomically`)."""
        files: dict[Path, bytes] = {}
        for record in records:
            paths = self.paths(record.stack)
            final = record.model_copy(update={"state_fingerprint": self.state_fingerprint(record.stack)})
            data = final.model_dump_json(indent=2).encode()
            make_private_dirs(paths.work_dir)
            files[paths.record_file] = data
            if good:
                files[paths.last_good_record] = data
                if paths.work_file.exists():
                    files[paths.last_good_file] = paths.work_file.read_bytes()
        write_many_atomically(files)

    def invalidate(self, stack: str) -> None:
        """The stack was just changed and not yet judged: drop the record (keep the last good one)."""
        self.paths(stack).record_file.unlink(missing_ok=True)

    def forget(self, stack: str) -> None:
        paths = self.paths(stack)
        for path in (paths.record_file, paths.last_good_record, paths.last_good_file):
            path.unlink(missing_ok=True)

    def mark_good(self, stack: str) -> None:
        """The current deployment passed its health gate: keep it (record and stack file) for rollback."""
        paths = self.paths(stack)
        if paths.record_file.exists():
            atomic_write(paths.last_good_record, paths.record_file.read_bytes())
        if paths.work_file.exists():
            atomic_write(paths.last_good_file, paths.work_file.read_bytes())

    def last_good(self, stack: str) -> DeployedRecord | None:
        return self._read(self.paths(stack).last_good_record)

    def drift(self, stack: str) -> DriftRecord | None:
        path = self.paths(stack).drift_file
        try:
            return DriftRecord.model_validate_json(path.read_bytes())
        except (FileNotFoundError, ValidationError):
            return None

    def put_drift(self, stack: str, report: DriftReport) -> None:
        record = DriftRecord(checked_at=datetime.now(UTC), drifted=report.drifted, summary=report.describe())
        atomic_write(self.paths(stack).drift_file, record.model_dump_json().encode())

    @staticmethod
    def _read(path: Path) -> DeployedRecord | None:
        try:
            return DeployedRecord.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValidationError:
            # A damaged record only costs a redeploy; never trust it to skip one.
            log.warning("ignoring unreadable deployed record %s", path)
            return None
