"""Processes of the local runtime, found through /proc and checked before any signal is sent.

The runner is started in its own session, so its pid is also the process group of the workerd
it spawns. A signal only ever goes to a pid of that group whose command line is ours (the
runner script or workerd): a recycled pid of someone else's process is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
RUNNER_MARK = "runner.mjs"
WORKERD_MARK = "workerd"


@dataclass(frozen=True)
class Proc:
    pid: int
    pgid: int
    state: str
    cmdline: str


def read_proc(pid: int) -> Proc | None:
    """The process, or None when gone (a zombie counts as gone: it runs nothing)."""
    try:
        stat_text = (PROC / str(pid) / "stat").read_text()
        cmdline = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may hold spaces and parentheses: the fields after it start past the last ')'.
    fields = stat_text[stat_text.rfind(")") + 2 :].split()
    state, pgid = fields[0], int(fields[2])
    if state in ("Z", "X"):
        return None
    return Proc(pid=pid, pgid=pgid, state=state, cmdline=cmdline)


def is_ours(proc: Proc) -> bool:
    return RUNNER_MARK in proc.cmdline or WORKERD_MARK in proc.cmdline


def group_members(pgid: int) -> list[Proc]:
    """Our processes (runner, workerd) in process group `pgid`."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        proc = read_proc(int(entry.name))
        if proc is not None and proc.pgid == pgid and is_ours(proc):
            members.append(proc)
    return members


def runner_alive(pid: int) -> bool:
    proc = read_proc(pid)
    return proc is not None and RUNNER_MARK in proc.cmdline


def workerd_pids(pgid: int) -> list[int]:
    return [p.pid for p in group_members(pgid) if WORKERD_MARK in p.cmdline and RUNNER_MARK not in p.cmdline]


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


def stop_group(pgid: int, *, grace_s: float) -> bool:
    """SIGTERM the runner (it disposes workerd), then SIGKILL whatever of ours is left; True if any was running."""
    members = group_members(pgid)
    if not members:
        return False
    for proc in members:
        if RUNNER_MARK in proc.cmdline:
            _signal(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and group_members(pgid):
        time.sleep(0.05)
    for proc in group_members(pgid):
        _signal(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and group_members(pgid):
        time.sleep(0.05)
    return True
