"""The scheduler's view from `systemctl show`, and how it degrades where systemd is not running."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator.server import scheduler
from orchestrator.server.scheduler import parse_show, read_timers

# `systemctl show --timestamp=unix --property=...` prints `Key=Value` lines, a blank line between
# units, in the order the units were named (systemd src/systemctl/systemctl-show.c, show_one);
# `--timestamp=unix` renders usec timestamps as `@<seconds>` (systemctl(1), since v248). Property
# names: org.freedesktop.systemd1(5), Timer (LastTriggerUSec, NextElapseUSecRealtime) and Service
# (Result, ExecMainStatus). A never-triggered timer has an empty LastTriggerUSec; an unknown unit
# has LoadState=not-found.
SHOW = """\
Id=clawdbot-drift.timer
LastTriggerUSec=@1764547020
NextElapseUSecRealtime=@1764568620
ActiveState=active

Id=clawdbot-drift.service
Result=exit-code
ExecMainStatus=1
ActiveState=failed
LoadState=loaded

Id=clawdbot-health.timer
LastTriggerUSec=@1764568320
NextElapseUSecRealtime=@1764568620
ActiveState=active

Id=clawdbot-health.service
Result=success
ExecMainStatus=0
ActiveState=inactive
LoadState=loaded

Id=clawdbot-backup.timer
LastTriggerUSec=
NextElapseUSecRealtime=@1764560460
ActiveState=active

Id=clawdbot-backup.service
Result=success
ExecMainStatus=0
ActiveState=inactive
LoadState=loaded
"""


def fake(out: str, code: int = 0, err: str = "") -> tuple[list[list[str]], scheduler.Runner]:
    seen: list[list[str]] = []

    def run(args: Sequence[str]) -> tuple[int, str, str]:
        seen.append(list(args))
        return code, out, err

    return seen, run


def test_timers_last_next_and_results(tmp_path: Path) -> None:
    seen, run = fake(SHOW)
    doc = read_timers(run, booted=tmp_path)
    assert doc.available and doc.reason is None
    by = {t.name: t for t in doc.timers}
    assert by["drift"].last_run == "2025-11-30T23:57:00+00:00" and by["drift"].next_run == "2025-12-01T05:57:00+00:00"
    assert by["drift"].result == "exit-code (status 1)"
    assert by["health"].result == "success"
    assert by["backup"].last_run is None and by["backup"].result == "never run"
    (args,) = seen
    assert args[:2] == ["show", "--timestamp=unix"]
    assert args[-6:] == [f"clawdbot-{n}.{k}" for n in ("drift", "health", "backup") for k in ("timer", "service")]


def test_units_not_installed_say_so(tmp_path: Path) -> None:
    missing = "Id=clawdbot-drift.timer\nLoadState=not-found\n\nId=clawdbot-drift.service\nLoadState=not-found\n"
    _, run = fake(missing)
    doc = read_timers(run, booted=tmp_path)
    assert [t.result for t in doc.timers] == ["not installed"] * 3


def test_without_systemd_running_the_view_says_why(tmp_path: Path) -> None:
    _, run = fake(SHOW)
    doc = read_timers(run, booted=tmp_path / "no-such-dir")
    assert not doc.available and doc.timers == []
    assert (
        doc.reason
        == f"systemd is not running on this machine ({tmp_path / 'no-such-dir'} is missing): no timers to read"
    )


def test_a_failing_systemctl_is_reported_in_one_line(tmp_path: Path) -> None:
    _, run = fake("", 1, "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed")
    doc = read_timers(run, booted=tmp_path)
    assert not doc.available and doc.reason is not None
    assert doc.reason.startswith("systemctl show failed: System has not been booted") and "\n" not in doc.reason


@pytest.mark.skipif(shutil.which("systemctl") is None, reason="systemctl is not installed here")
def test_the_real_systemctl_here_gives_an_answer_either_way() -> None:
    doc = read_timers()
    assert doc.available == Path("/run/systemd/system").is_dir()
    if not doc.available:
        assert doc.reason and "systemd" in doc.reason


def test_parse_show_ignores_noise() -> None:
    assert parse_show("\n\nId=a\nX=1=2\nnot a pair\n\n\nId=b\n") == [{"Id": "a", "X": "1=2"}, {"Id": "b"}]
