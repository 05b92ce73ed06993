"""The scheduler's view: the systemd timers of scripts/systemd/ (drift, health, backup).

Read with one `systemctl show` per refresh. Timer units carry `LastTriggerUSec` and
`NextElapseUSecRealtime` (org.freedesktop.systemd1.Timer); their services carry `Result` (success,
exit-code, signal, timeout, ...), `ExecMainStatus` and `ActiveState` (org.freedesktop.systemd1.Service).
`--timestamp=unix` (systemd >= 248) prints times as `@<seconds>`; a unit never triggered shows
`n/a` or nothing. Where systemd is not PID 1 (a container, a laptop with another init, CI) or
systemctl is missing, the view says exactly that instead of guessing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.server.schemas import SchedulerDoc, TimerView

TIMERS = {"drift": "clawdbot-drift", "health": "clawdbot-health", "backup": "clawdbot-backup"}
TIMER_PROPERTIES = ("Id", "LastTriggerUSec", "NextElapseUSecRealtime", "ActiveState")
SERVICE_PROPERTIES = ("Id", "Result", "ExecMainStatus", "ActiveState", "LoadState")
SYSTEMD_RUNNING = Path("/run/systemd/system")
"""sd_booted(3): this directory exists exactly when systemd is the running init."""

Runner = Callable[[Sequence[str]], "tuple[int, str, str]"]


def run_systemctl(args: Sequence[str]) -> tuple[int, str, str]:
    try:
        done = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, "", f"systemctl failed: {exc}"
    return done.returncode, done.stdout, done.stderr


def _time(value: str | None) -> str | None:
    if not value or value == "n/a" or not value.startswith("@"):
        return None
    try:
        seconds = int(value[1:])
    except ValueError:
        return None
    if seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def parse_show(text: str) -> list[dict[str, str]]:
    """`systemctl show` of several units: `Key=Value` lines, one blank line between units."""
    units: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                units.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        units.append(current)
    return units


def _unavailable(reason: str) -> SchedulerDoc:
    return SchedulerDoc(available=False, reason=reason, timers=[])


def read_timers(run: Runner = run_systemctl, *, booted: Path = SYSTEMD_RUNNING) -> SchedulerDoc:
    if shutil.which("systemctl") is None and run is run_systemctl:
        return _unavailable("systemctl is not installed here: the timers of scripts/systemd/ run only under systemd")
    if not booted.is_dir():
        return _unavailable(f"systemd is not running on this machine ({booted} is missing): no timers to read")
    units = [f"{base}.{kind}" for base in TIMERS.values() for kind in ("timer", "service")]
    properties = ",".join(dict.fromkeys((*TIMER_PROPERTIES, *SERVICE_PROPERTIES)))
    code, out, err = run(["show", "--timestamp=unix", f"--property={properties}", *units])
    if code != 0:
        return _unavailable(f"systemctl show failed: {' '.join(err.split())[:300] or f'exit {code}'}")
    by_id = {unit.get("Id", ""): unit for unit in parse_show(out)}
    timers = []
    for name, base in TIMERS.items():
        timer, service = by_id.get(f"{base}.timer", {}), by_id.get(f"{base}.service", {})
        if service.get("LoadState") == "not-found" or not timer:
            timers.append(
                TimerView(
                    name=name, unit=f"{base}.timer", last_run=None, next_run=None, result="not installed", active=None
                )
            )
            continue
        result = service.get("Result") or None
        status = service.get("ExecMainStatus")
        if result and result != "success" and status not in (None, "", "0"):
            result = f"{result} (status {status})"
        timers.append(
            TimerView(
                name=name,
                unit=f"{base}.timer",
                last_run=_time(timer.get("LastTriggerUSec")),
                next_run=_time(timer.get("NextElapseUSecRealtime")),
                result=result if _time(timer.get("LastTriggerUSec")) else "never run",
                active=timer.get("ActiveState") or None,
            )
        )
    return SchedulerDoc(available=True, reason=None, timers=timers)
