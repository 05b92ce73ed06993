"""The systemd units in scripts/systemd: structure, the commands they run, and their exposure score.

The score comes from the real `systemd-analyze security` run offline over the layout that
`setup-vps.sh --root` installs (drop-in included). It needs systemd's binary: on Debian
`apt-get install systemd` provides it (systemd 252 in bookworm supports `--offline=true` and
`--root=`); where it is missing the score test skips and says so.
"""

from __future__ import annotations

import configparser
import importlib
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import click
import pytest
from vps_setup import UNITS, run

import orchestrator.__main__ as orchestrator_main
from orchestrator.cli import cli
from orchestrator.local_edge.layout import StateLayout

UNIT_FILES = {p.name: p for p in [*UNITS.glob("*.service"), *(UNITS / "cluster").glob("*.service")]}
"""Every service, the cluster node's worker (scripts/systemd/cluster/, `setup-vps.sh --worker`) included."""
SERVICES = sorted(UNIT_FILES)
JOBS = [name for name in SERVICES if "@" not in name]  # every unit but the alert template
DROP_IN = UNITS / "clawdbot-.service.d" / "10-hardening.conf"
MAX_EXPOSURE = 3.5  # issue 12 item 5
CONSOLE_SCRIPT = "clawdbot-edge"


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def service(name: str) -> configparser.SectionProxy:
    """The [Service] section as systemd sees it: the unit, then the shared drop-in on top."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read([UNIT_FILES[name], DROP_IN])
    return parser["Service"]


def test_every_service_is_covered_by_the_drop_in() -> None:
    """systemd applies "clawdbot-.service.d/" to units named clawdbot-* (systemd.unit(5), drop-ins)."""
    assert SERVICES and all(name.startswith("clawdbot-") for name in SERVICES)
    assert {"clawdbot-local-edge.service", "clawdbot-alert@.service", "clawdbot-worker.service"} <= set(SERVICES)


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_sandboxed_as_the_service_user(name: str) -> None:
    section = service(name)
    assert section["User"] == "clawdbot" and section["Group"] == "clawdbot"
    assert section["UMask"] == "0077" and section["ProtectSystem"] == "strict"
    assert section["ReadWritePaths"] == "/var/lib/clawdbot"
    assert section["CapabilityBoundingSet"] == "" and section["NoNewPrivileges"] == "yes"
    assert "EnvironmentFile=/etc/clawdbot/clawdbot.env" in UNIT_FILES[name].read_text().splitlines()  # the layout


@pytest.mark.parametrize("name", JOBS)
def test_each_job_alerts_on_failure(name: str) -> None:
    assert unit(UNIT_FILES[name])["Unit"]["OnFailure"] == "clawdbot-alert@%n.service"


def test_the_alert_hook_never_alerts_about_itself() -> None:
    parsed = unit(UNITS / "clawdbot-alert@.service")
    assert "OnFailure" not in parsed["Unit"]
    assert parsed["Service"]["ExecStart"] == "/opt/clawdbot/app/scripts/alert-hook.sh %i"
    assert (UNITS.parent / "alert-hook.sh").stat().st_mode & 0o111  # run by path: must be executable


@pytest.mark.parametrize("name", ["drift", "health", "backup"])
def test_each_timer_starts_its_service(name: str) -> None:
    timer = unit(UNITS / f"clawdbot-{name}.timer")
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert timer.has_section("Timer")
    assert (UNITS / f"clawdbot-{name}.service").is_file()


def test_the_worker_unit_reaches_the_shared_state_and_stops_gently() -> None:
    parsed = unit(UNIT_FILES["clawdbot-worker.service"])
    section = parsed["Service"]
    lines = UNIT_FILES["clawdbot-worker.service"].read_text().splitlines()
    # The R2 key pair for state on R2 (docs/cluster.md): root-only file, read by systemd itself.
    assert "EnvironmentFile=/etc/clawdbot/r2.env" in lines
    assert section["Restart"] == "on-failure" and parsed["Install"]["WantedBy"] == "multi-user.target"
    # Long enough for a running stack operation to end instead of being cut mid-update.
    assert section["TimeoutStopSec"].endswith("min") and int(section["TimeoutStopSec"][:-3]) >= 10


def test_the_local_edge_unit_supervises_the_runner_the_cli_records() -> None:
    section = unit(UNITS / "clawdbot-local-edge.service")["Service"]
    assert section["Type"] == "forking"
    # The pid file the CLI writes (orchestrator.local_edge.layout) under CLAWDBOT_LOCAL_EDGE_DIR.
    assert Path(section["PIDFile"]) == StateLayout(Path("/var/lib/clawdbot/local-edge")).pid_file
    active = [line for line in DROP_IN.read_text().splitlines() if line and not line.startswith("#")]
    assert not [line for line in active if line.startswith("MemoryDenyWriteExecute")]  # node/workerd JIT


def test_the_console_script_is_the_package_entry_point_the_cli_is() -> None:
    scripts = tomllib.loads((UNITS.parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attribute = scripts[CONSOLE_SCRIPT].partition(":")
    entry = getattr(importlib.import_module(module), attribute)
    assert entry is orchestrator_main.run


@pytest.mark.parametrize("name", [n for n in JOBS if "ExecStart" in unit(UNIT_FILES[n])["Service"]])
def test_each_cli_unit_starts_in_the_project_dir_and_never_in_the_code(name: str) -> None:
    # An installed package imports from the venv, so the code dir is no longer the working directory.
    section = unit(UNIT_FILES[name])["Service"]
    assert section["WorkingDirectory"] == "/var/lib/clawdbot/project"  # CLAWDBOT_PROJECT_DIR of the env file
    assert "/opt/clawdbot/app" not in section["ExecStart"]


def _commands() -> list[tuple[str, str]]:
    found = []
    for name in JOBS:
        section = unit(UNIT_FILES[name])["Service"]
        found += [(name, section[key]) for key in ("ExecStart", "ExecStartPost", "ExecStop") if key in section]
    return found


@pytest.mark.parametrize(("name", "line"), _commands(), ids=lambda v: str(v))
def test_each_command_line_parses_with_the_real_cli(name: str, line: str) -> None:
    """Parse (never run) a unit's command line with the real CLI: catches renamed commands/options."""
    script, *args = line.split()
    # The installed package's console script (setup-vps.sh pip-installs the package into the venv).
    assert script == f"/opt/clawdbot/venv/bin/{CONSOLE_SCRIPT}"
    command: click.Command = cli
    context = click.Context(cli, info_name="orchestrator")
    word, rest = "orchestrator", list(args)
    # The first word under a group names its subcommand; an option instead means the group runs
    # itself (`serve --port P`: a group that is also a command, `invoke_without_command`).
    while isinstance(command, click.Group) and not (rest and rest[0].startswith("-")):
        word, *rest = rest
        sub = command.get_command(context, word)
        assert sub is not None, f"{name}: {word} is not an orchestrator command"
        command, context = sub, click.Context(sub, info_name=word, parent=context)
    command.make_context(word, rest, parent=context.parent)


# ---------------------------------------------------------------------------------------------
# The exposure score


def _exposure(root: Path, name: str) -> float:
    """The overall exposure systemd reports; any warning while loading the unit fails the test."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd); exposure not measured")
    result = subprocess.run(
        [analyze, "security", "--offline=true", f"--root={root}", "--no-pager", name],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    found = re.search(rf"Overall exposure level for {re.escape(name)}: (\d+\.\d)", result.stdout)
    assert found, result.stdout + result.stderr
    # systemd skips what it cannot parse (a misspelt key, a bad value) with a warning on stderr.
    assert result.stderr == "", result.stderr
    return float(found.group(1))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vps")
    assert run("--root", str(root), "--worker").returncode == 0
    return root


@pytest.mark.parametrize("name", [n.replace("@.", "@example.") for n in SERVICES])
def test_exposure_is_at_most_3_5(installed: Path, name: str) -> None:
    assert _exposure(installed, name) <= MAX_EXPOSURE


def test_a_misspelt_directive_is_caught(installed: Path, tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    shutil.copytree(installed / "etc", typo / "etc")
    with (typo / "etc/systemd/system/clawdbot-drift.service").open("a") as unit_file:
        unit_file.write("ProtectKernelTunabels=yes\n")
    with pytest.raises(AssertionError, match="Unknown key 'ProtectKernelTunabels'"):
        _exposure(typo, "clawdbot-drift.service")


def test_the_score_measures_the_drop_in(installed: Path, tmp_path: Path) -> None:
    """Without the shared drop-in a unit is back to EXPOSED: the test above does see the sandbox."""
    bare = tmp_path / "bare"
    shutil.copytree(installed / "etc", bare / "etc")
    shutil.rmtree(bare / "etc/systemd/system/clawdbot-.service.d")
    assert _exposure(bare, "clawdbot-drift.service") > 8.0
