"""Crash recovery: stale stack locks, pending operations, and the fleet run lease.

A killed run leaves two kinds of debris in the self-managed backend, a directory (`file://`) or a
folder of an R2 bucket (`s3://`, shared by several nodes; read through `engine/state_store.py`):

- lock files `.pulumi/locks/organization/<project>/<stack>/<id>.json` holding `{pid, username,
  hostname, timestamp}` of the CLI that took them. `pulumi cancel` (`Stack.cancel()`) on this backend
  deletes *every* lock of the stack without checking its holder (pulumi#9100), so recovery does not
  use it: we clear a lock ourselves, and only when it is provably dead: taken on this host by a
  process that no longer exists. A lock from another host, or from a live process, is reported with
  exactly what to run.
- `pending_operations` in the stack checkpoint (pulumi#4265): resources the engine was creating,
  updating or deleting when it died. Those need a `refresh`; pending *creates* may have made real
  Cloudflare resources that the state does not know, so the advice names them.

`FleetLease` keeps two fleet runs from driving the same stacks at once. It is an `flock` on a file
in the work root, so the kernel releases it when its holder dies: there is no stale lease to clean.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.config.atomic_file import make_private_dirs
from orchestrator.core.errors import FleetLockError
from orchestrator.engine.state_store import DirectoryState, StateStore

BOOKKEEPING = ".pulumi"
FOREIGN_LOCK_LEASE = timedelta(hours=6)
"""A lock from another host older than this is reported as probably stale (never auto-cleared)."""


State = Path | StateStore
"""A state directory (the file backend, as tests and one VPS give it) or any store of the backend."""


def as_store(state: State) -> StateStore:
    return DirectoryState(state) if isinstance(state, Path) else state


def _checkpoint_keys(project: str, stack: str) -> list[str]:
    """Where the stack's checkpoint may be: the project layout first, then the legacy one."""
    bases = (f"{BOOKKEEPING}/stacks/{project}", f"{BOOKKEEPING}/stacks")
    return [f"{base}/{stack}{suffix}" for base in bases for suffix in (".json", ".json.gz")]


def _checkpoint(state: State, project: str, stack: str) -> tuple[str, bytes] | None:
    """The key and bytes of the stack's checkpoint, or None when the stack has none."""
    store = as_store(state)
    for key in _checkpoint_keys(project, stack):
        raw = store.read(key)
        if raw is not None:
            return key, raw
    return None


def _stamp(state: State, project: str, stack: str) -> tuple[str, str] | None:
    """The key and fingerprint of the stack's checkpoint, without reading it (stat or HEAD)."""
    store = as_store(state)
    for key in _checkpoint_keys(project, stack):
        stamp = store.fingerprint(key)
        if stamp is not None:
            return key, stamp
    return None


def state_key(state: State, project: str, stack: str) -> str | None:
    """The key of the stack's checkpoint in the backend, or None when the stack has none."""
    found = _stamp(state, project, stack)
    return found[0] if found else None


def state_fingerprint(state: State, project: str, stack: str) -> str | None:
    """Changes whenever the checkpoint is rewritten; None when the stack has none."""
    found = _stamp(state, project, stack)
    return found[1] if found else None


def lock_dirs(project: str, stack: str) -> list[str]:
    """The lock folders of a stack: project layout (`organization/<project>/<stack>`), then legacy."""
    root = f"{BOOKKEEPING}/locks"
    return [f"{root}/organization/{project}/{stack}", f"{root}/{stack}"]


def pid_alive(pid: int) -> bool:
    """Signal 0 probes without touching the process; EPERM still proves it exists."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


@dataclass(frozen=True)
class StackLock:
    key: str
    """The lock file's key in the backend."""
    where: str
    """How an operator names it: a path, or an s3:// URL."""
    pid: int
    username: str
    hostname: str
    timestamp: datetime | None

    def holder(self) -> str:
        when = self.timestamp.isoformat(timespec="seconds") if self.timestamp else "an unknown time"
        return f"{self.username}@{self.hostname} (pid {self.pid}) since {when}"


@dataclass(frozen=True)
class PendingOperation:
    urn: str
    type: str
    kind: str
    """creating, updating, deleting, reading, importing."""


@dataclass(frozen=True)
class RecoveryReport:
    """What a killed run left behind for one stack, and what to do about it."""

    stack: str
    stale_locks: tuple[StackLock, ...] = ()
    """Provably dead: safe to delete."""
    live_locks: tuple[StackLock, ...] = ()
    """Held by a live process here, or by another host: never touched."""
    pending: tuple[PendingOperation, ...] = ()
    unreadable: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.stale_locks or self.live_locks or self.pending or self.unreadable)

    @property
    def blocked(self) -> bool:
        """A lock we may not clear: an operation on the stack would fail now."""
        return bool(self.live_locks or self.unreadable)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        # Go writes RFC 3339 with nanoseconds; Python takes at most microseconds.
        head, dot, tail = value.partition(".")
        if dot:
            digits = "".join(ch for ch in tail if ch.isdigit())
            zone = tail[len(digits) :]
            value = f"{head}.{digits[:6]}{zone}"
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def find_locks(state: State, project: str, stack: str) -> tuple[list[StackLock], list[str]]:
    """All lock files of the stack, and the ones that could not be read (named, not guessed)."""
    store = as_store(state)
    locks: list[StackLock] = []
    unreadable: list[str] = []
    for folder in lock_dirs(project, stack):
        for key in store.keys(folder):
            if not key.endswith(".json"):
                continue
            try:
                data = json.loads((store.read(key) or b"").decode("utf-8"))
                locks.append(
                    StackLock(
                        key=key,
                        where=store.where(key),
                        pid=int(data.get("pid", 0)),
                        username=str(data.get("username", "?")),
                        hostname=str(data.get("hostname", "?")),
                        timestamp=_parse_time(data.get("timestamp")),
                    )
                )
            except (OSError, ValueError, TypeError, AttributeError):
                unreadable.append(store.where(key))
    return locks, unreadable


def _latest(state: State, project: str, stack: str) -> dict[str, Any]:
    """The stack's `checkpoint.latest` (its last deployment), or {} when it has no checkpoint."""
    found = _checkpoint(state, project, stack)
    if found is None:
        return {}
    key, raw = found
    if key.endswith(".gz"):
        import gzip  # a compressed checkpoint only (PULUMI_SELF_MANAGED_STATE_GZIP): not at every start

        raw = gzip.decompress(raw)
    document: dict[str, Any] = json.loads(raw)
    latest: dict[str, Any] = (document.get("checkpoint") or {}).get("latest") or {}
    return latest


def checkpoint_resources(state: State, project: str, stack: str) -> list[dict[str, Any]]:
    """The resources of the stack's checkpoint, read from the backend (no engine); [] without one."""
    return list(_latest(state, project, stack).get("resources") or [])


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def checkpoint_outputs(state: State, project: str, stack: str) -> dict[str, Any]:
    """The stack's outputs as its checkpoint holds them (secret ones stay encrypted); {} without one.

    They are the outputs of the root `pulumi:pulumi:Stack` resource, the one without a parent
    (pulumi pkg/resource/stack/checkpoint.go, GetRootStackResource).
    """
    for resource in checkpoint_resources(state, project, stack):
        if resource.get("type") == ROOT_STACK_TYPE and not resource.get("parent"):
            outputs = resource.get("outputs")
            return dict(outputs) if isinstance(outputs, dict) else {}
    return {}


def find_pending(state: State, project: str, stack: str) -> list[PendingOperation]:
    pending = []
    for op in _latest(state, project, stack).get("pending_operations") or []:
        resource = op.get("resource") or {}
        pending.append(
            PendingOperation(str(resource.get("urn", "?")), str(resource.get("type", "?")), str(op.get("type", "?")))
        )
    return pending


def inspect(
    state: State,
    project: str,
    stack: str,
    *,
    tenant_flag: str,
    hostname: str | None = None,
    alive: Callable[[int], bool] = pid_alive,
    now: datetime | None = None,
) -> RecoveryReport:
    """Classify the debris of one stack. `tenant_flag` is how the CLI names it (`--tenant acme`)."""
    here = hostname or socket.gethostname()
    moment = now or datetime.now(UTC)
    locks, unreadable = find_locks(state, project, stack)
    stale, live, advice = [], [], []
    for lock in locks:
        if lock.hostname == here and not alive(lock.pid):
            stale.append(lock)
        elif lock.hostname == here:
            live.append(lock)
            advice.append(
                f"stack {stack} is locked by {lock.holder()}, which is still running: wait for it "
                f"to finish, or stop that process and run `python -m orchestrator recover {tenant_flag}`"
            )
        else:
            live.append(lock)
            old = lock.timestamp is not None and moment - lock.timestamp > FOREIGN_LOCK_LEASE
            hint = "it is probably stale; " if old else ""
            advice.append(
                f"stack {stack} is locked by {lock.holder()} on another host: {hint}if no update is "
                f"running there, delete {lock.where} by hand"
            )
    for path in unreadable:
        advice.append(f"stack {stack}: lock file {path} is unreadable; inspect it and delete it if no update runs")
    pending = find_pending(state, project, stack)
    creates = [p for p in pending if p.kind == "creating"]
    if creates:
        names = ", ".join(p.urn.rsplit("::", 1)[-1] for p in creates)
        advice.append(
            f"stack {stack}: an interrupted update was creating {names}; run `python -m orchestrator "
            f"refresh {tenant_flag} --clear-pending-creates`, then delete or import any of them that "
            f"already exist at Cloudflare before the next up"
        )
    if len(pending) > len(creates):
        advice.append(
            f"stack {stack}: {len(pending) - len(creates)} interrupted update/delete operations are "
            f"pending; run `python -m orchestrator refresh {tenant_flag}`"
        )
    return RecoveryReport(stack, tuple(stale), tuple(live), tuple(pending), tuple(unreadable), tuple(advice))


def clear_stale(state: State, report: RecoveryReport, alive: Callable[[int], bool] = pid_alive) -> list[StackLock]:
    """Delete the provably dead locks of a report; re-checks each holder right before deleting."""
    store = as_store(state)
    removed = []
    for lock in report.stale_locks:
        if alive(lock.pid):
            continue
        if store.delete(lock.key):
            removed.append(lock)
    return removed


@dataclass(frozen=True)
class LeaseInfo:
    pid: int
    holder: str
    started: str
    command: str


@contextmanager
def fleet_lease(path: Path, *, holder: str, command: str) -> Iterator[LeaseInfo]:
    """Hold the fleet lease for the duration of a run, or fail naming who holds it."""
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                other = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                other = {}
            raise FleetLockError(
                f"another fleet run holds {path}: {other.get('command', '?')} by {other.get('holder', '?')} "
                f"(pid {other.get('pid', '?')}) since {other.get('started', '?')}; wait for it to finish"
            ) from None
        info = LeaseInfo(os.getpid(), holder, datetime.now(UTC).isoformat(timespec="seconds"), command)
        payload = json.dumps(info.__dict__).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload, 0)
        try:
            yield info
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
