"""Processes of the local runtime, found through /proc and checked before any signal is sent.

The runner is started in its own session, so its pid is also the process group of the workerd
it spawns. A signal only ever goes to a pid of that group that is provably ours: the runner is
`node <this checkout's runner.mjs>` (the exact path as an argument, not a substring) and workerd
is an executable named `workerd`, and both run with the edge's state directory as their working
directory (runtime.py starts the runner there; Miniflare spawns workerd without a cwd of its own).
So a recycled pid now used by someone else's `wrangler dev`, or by the runner of another local
edge with another state directory, is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
RUNNER_SCRIPT = Path(__file__).resolve().parent / "runner.mjs"
"""The runner every local edge of this checkout runs (runtime.RUNNER)."""
WORKERD_MARK = "workerd"


@dataclass(frozen=True)
class Proc:
    pid: int
    pgid: int
    argv: tuple[str, ...] = ()
    cwd: str | None = None
    """Resolved working directory, or None when /proc does not let us read it (another user's)."""

    @property
    def is_runner(self) -> bool:
        return str(RUNNER_SCRIPT) in self.argv[1:]

    @property
    def is_workerd(self) -> bool:
        return bool(self.argv) and os.path.basename(self.argv[0]) == WORKERD_MARK


def read_proc(pid: int) -> Proc | None:
    """The process, or None when gone (a zombie counts as gone: it runs nothing)."""
    try:
        stat_text = (PROC / str(pid) / "stat").read_text()
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    try:
        cwd: str | None = os.readlink(PROC / str(pid) / "cwd")
    except OSError:
        cwd = None
    argv = tuple(part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")) if raw else ()
    # comm (field 2) may hold spaces and parentheses: the fields after it start past the last ')'.
    fields = stat_text[stat_text.rfind(")") + 2 :].split()
    state, pgid = fields[0], int(fields[2])
    if state in ("Z", "X"):
        return None
    return Proc(pid=pid, pgid=pgid, argv=argv, cwd=cwd)


def _same_dir(cwd: str | None, state_dir: Path) -> bool:
    if cwd is None:
        return False
    with contextlib.suppress(OSError):
        return os.path.samefile(cwd, state_dir)
    return cwd == str(state_dir.resolve())


def is_ours(proc: Proc, state_dir: Path | None = None) -> bool:
    """Our runner or workerd; with `state_dir`, only those of the local edge kept there.

    Every caller that signals passes `state_dir`; without it (a look around, as the demo's test
    does) any runner of this checkout or any workerd counts.
    """
    if not (proc.is_runner or proc.is_workerd):
        return False
    return state_dir is None or _same_dir(proc.cwd, state_dir)


def group_members(pgid: int, state_dir: Path | None = None) -> list[Proc]:
    """Our processes (runner, workerd) in process group `pgid`."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        proc = read_proc(int(entry.name))
        if proc is not None and proc.pgid == pgid and is_ours(proc, state_dir):
            members.append(proc)
    return members


def runner_alive(pid: int, state_dir: Path | None = None) -> bool:
    proc = read_proc(pid)
    return proc is not None and proc.is_runner and is_ours(proc, state_dir)


def workerd_pids(pgid: int, state_dir: Path | None = None) -> list[int]:
    return [p.pid for p in group_members(pgid, state_dir) if p.is_workerd and not p.is_runner]


def rss_bytes(pid: int) -> int | None:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_group(pgid: int, *, state_dir: Path, grace_s: float) -> bool:
    """SIGTERM the runner (it disposes workerd), then SIGKILL whatever of ours is left; True if any was running.

    Only processes of the local edge in `state_dir` are signalled (see `is_ours`).
    """
    members = group_members(pgid, state_dir)
    if not members:
        return False
    for proc in members:
        if proc.is_runner:
            _signal(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and group_members(pgid, state_dir):
        time.sleep(0.05)
    for proc in group_members(pgid, state_dir):
        _signal(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and group_members(pgid, state_dir):
        time.sleep(0.05)
    return True
