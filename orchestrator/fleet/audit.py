"""Append-only audit log of fleet operations: one JSON object per line, never a secret.

Who ran what against which tenant, with which bundle, and how it ended. The log is only ever
appended to (O_APPEND, one write per line, so concurrent writers never interleave a line) and
created 0600. Free text (`detail`) passes through `redact`, is cut to one bounded line, and never
carries config values: callers put error summaries there, not payloads.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.core.errors import EdgeError

MAX_DETAIL = 400
"""Longest `detail` kept; an audit line is a summary, the operator reads logs for the rest."""

SENSITIVE_ENV = (
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_API_USER_SERVICE_KEY",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_ACCESS_TOKEN",
)
"""Environment variables whose values must never be written anywhere, even by accident."""

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_AUTH_HEADER = re.compile(r"(?i)(authorization|x-auth-key|x-edge-health-token)(\s*[:=]\s*)\S+")
_REDACTED = "[redacted]"


def redact(text: str, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> str:
    """Remove credential-looking material and the values of known secret env vars from `text`."""
    env = os.environ if environ is None else environ
    out = _BEARER.sub(lambda m: m.group(1) + _REDACTED, text)
    out = _AUTH_HEADER.sub(lambda m: m.group(1) + m.group(2) + _REDACTED, out)
    values = [env.get(name, "") for name in SENSITIVE_ENV] + list(extra)
    # Longest first so a value that contains another is not left half-masked.
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):
        out = out.replace(value, _REDACTED)
    return out


def one_line(text: str, limit: int = MAX_DETAIL) -> str:
    """Collapse whitespace to one line and cut it to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


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
            detail=one_line(redact(detail)) if detail else None,
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
