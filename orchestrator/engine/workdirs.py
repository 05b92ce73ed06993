"""Each stack's persistent work dir on the VPS, and the stack file copied into it before every operation.

Never the SDK's fresh temp dir (it loses config) and never a shared one (`stack select`/`init`
rewrite workspace files and race, pulumi#8186).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.atomic_file import make_private_dirs, write_atomically
from orchestrator.config.settings import Settings
from orchestrator.core.errors import StackError
from orchestrator.core.names import stack_file, tenant_of


@dataclass(frozen=True)
class StackPaths:
    """Where one stack's files live on the VPS."""

    project_dir: Path
    work_root: Path
    stack: str

    @classmethod
    def of(cls, settings: Settings, stack: str) -> StackPaths:
        return cls(settings.project_dir, settings.work_root, stack)

    @property
    def source_file(self) -> Path:
        """The registry entry: `Pulumi.<stack>.yaml` in the project dir (source of truth)."""
        return stack_file(self.project_dir, self.stack)

    @property
    def work_dir(self) -> Path:
        return self.work_root / self.stack

    @property
    def work_file(self) -> Path:
        return stack_file(self.work_dir, self.stack)

    @property
    def record_file(self) -> Path:
        return self.work_dir / "deployed.json"

    @property
    def last_good_record(self) -> Path:
        return self.work_dir / "last-good.json"

    @property
    def last_good_file(self) -> Path:
        return self.work_dir / "last-good.Pulumi.yaml"

    @property
    def reissued_file(self) -> Path:
        """The last good stack file under a newer config_version (a rollback that rolls forward)."""
        return self.work_dir / "rollback.Pulumi.yaml"

    @property
    def drift_file(self) -> Path:
        return self.work_dir / "drift.json"

    def log_file(self, operation: str) -> Path:
        return self.work_dir / f"last-{operation}.log"


_SALT_LINE = re.compile(rb"^encryptionsalt:.*$", re.MULTILINE)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomic replace inside a private directory (created 0700 when missing)."""
    make_private_dirs(path.parent)
    write_atomically(path, data, mode)


def sync_stack_file(source: Path, target: Path, stack: str) -> None:
    """Copy the stack file into the work dir, keeping a salt `stack init` wrote there.

    A new tenant's file may have no `encryptionsalt` yet (no secrets set). `stack init` then writes
    one into the work-dir copy; dropping it on the next sync would make the state undecryptable.
    """
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        hint = f"is {tenant_of(stack)} a registered tenant?"
        raise StackError(f"stack {stack}: no stack file {source} ({hint})") from None
    if not _SALT_LINE.search(data) and target.exists():
        salt = _SALT_LINE.search(target.read_bytes())
        if salt:
            data = salt.group(0) + b"\n" + data
    atomic_write(target, data)
