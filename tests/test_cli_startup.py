"""Commands that never evaluate the program start without the Cloudflare provider SDK (issue 12).

Importing `pulumi_cloudflare` costs over a second and ~150 MB; every systemd timer run (health,
drift, backup) and every `--help` paid it when the CLI imported all command modules up front.
Each case runs the real command in a fresh interpreter and reports what it imported at exit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import atexit, runpy, sys
atexit.register(lambda: print("IMPORTED:" + ",".join(m for m in ("pulumi_cloudflare", "pulumi_random")
                                                     if m in sys.modules), file=sys.stderr))
sys.argv = ["orchestrator", *sys.argv[1:]]
runpy.run_module("orchestrator", run_name="__main__")
"""


def _imported(args: list[str], env: dict[str, str]) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("IMPORTED:"))
    return {m for m in line.removeprefix("IMPORTED:").split(",") if m}, proc


@pytest.fixture
def project(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


FAST = [
    ["--help"],
    ["status", "--help"],
    ["status", "--all", "--no-health", "--json"],
    ["tenants", "list"],
    ["tenants", "show", "acme"],
    ["health", "--help"],
    ["local", "status"],
    ["local", "--help"],
    ["backup", "--help"],
    ["backup", "list"],
    ["doctor"],
    ["secrets", "--help"],
    ["recover", "--help"],
    [
        "platform",
        "init",
        "--force",
        "--account-id",
        "0123456789abcdef0123456789abcdef",
        "--compatibility-date",
        "2026-03-01",
    ],
    ["temporal", "--help"],
    ["worker", "--help"],
]


@pytest.mark.parametrize("args", FAST, ids=" ".join)
def test_commands_that_do_not_evaluate_the_program_never_import_the_provider_sdk(
    args: list[str], project: dict[str, str]
) -> None:
    imported, proc = _imported(args, project)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert imported == set(), f"`{' '.join(args)}` imported {imported}: {proc.stderr[-2000:]}"


def test_plan_does_import_it_so_the_probe_can_see_an_import(project: dict[str, str]) -> None:
    imported, proc = _imported(["plan", "--stack", "prod.acme", "--json"], project)
    assert proc.returncode == 0, proc.stderr
    assert "pulumi_cloudflare" in imported


def test_every_lazy_entry_names_its_command_and_its_own_short_help() -> None:
    for name, entry in COMMANDS.items():
        command = entry.load()
        assert command.name == name, f"COMMANDS[{name!r}] loads {command.name!r}"
        assert entry.short_help == command.get_short_help_str(10_000), f"short help of {name!r} drifted"


def test_the_fleet_door_imports_what_change_detection_needs_only() -> None:
    # A run with nothing to do imports the fleet verbs' module and reads every stack file; a
    # misspelt key's hint (difflib) and a gzipped checkpoint (gzip) import theirs when they happen.
    probe = "import sys, orchestrator.cli.fleet; print(','.join(m for m in ('difflib', 'gzip') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
