"""Append-only audit log of fleet operations: one JSON object per line, never a secret.

Who ran what against which tenant, with which bundle, and how it ended. The log is only ever
appended to (O_APPEND, one write per line, so concurrent writers never interleave a line) and
created 0600. Free text (`detail`) passes through `redact` (`orchestrator.core.masking`), is cut to
one bounded line, and never carries config values: callers put error summaries there, not payloads.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.core.errors import EdgeError
from orchestrator.core.masking import report_line


class AuditEvent(BaseModel):
    """One line of the audit log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    when: datetime
    """UTC time the event was recorded."""
    who: str
    """`user@host` of the operator process."""
    run_id: str
    """Groups the lines of one fleet run."""
    stack: str
    """Pulumi stack name (`prod.<tenant>`), or `fleet` for run-level events."""
    tenant: str | None
    """Tenant id, when the event concerns one tenant."""
    operation: str
    """preview, up, refresh, destroy, drift, rollback, health-gate, recover, run."""
    bundle_hash: str | None
    """Rendered bundle hash involved (desired for up, deployed otherwise), when known."""
    result: str
    """ok, failed, skipped, drifted, halted, rolled-back, cleared, started, finished."""
    detail: str | None = None
    """One redacted line of context (error summary, reason for skipping)."""


def default_who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class AuditLog:
    """Appends `AuditEvent`s to a JSON-lines file; safe across threads and processes."""

    def __init__(self, path: Path, *, who: str | None = None, run_id: str | None = None) -> None:
        self.path = path
        self.who = who or default_who()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()

    def record(
        self,
        *,
        stack: str,
        operation: str,
        result: str,
        tenant: str | None = None,
        bundle_hash: str | None = None,
        detail: str | None = None,
    ) -> AuditEvent:
        event = AuditEvent(
            when=datetime.now(UTC),
            who=self.who,
            run_id=self.run_id,
            stack=stack,
            tenant=tenant,
            operation=operation,
            bundle_hash=bundle_hash,
            result=result,
            detail=report_line(detail) if detail else None,
        )
        self._append(event.model_dump_json() + "\n")
        return event

    def _append(self, line: str) -> None:
        data = line.encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                raise EdgeError(f"audit log {self.path}: cannot open for append: {exc.strerror}") from exc
            try:
                # flock keeps lines whole when another orchestrator process appends at the same time.
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, data)
            finally:
                os.close(fd)


def read_events(path: Path) -> list[AuditEvent]:
    """All events in the log, oldest first. A corrupt line is an error naming the file and line."""
    if not path.exists():
        return []
    events: list[AuditEvent] = []
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                events.append(AuditEvent.model_validate(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise EdgeError(f"audit log {path}: line {number} is not JSON ({exc.msg})") from exc
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "line"
                raise EdgeError(f"audit log {path}: line {number}, field {where}: {first['msg']}") from exc
    return events
