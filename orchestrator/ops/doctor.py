"""Health checks of the VPS control plane: each returns one line's worth of verdict.

The stack check matters most: Pulumi's file backend silently skips stacks whose encryptionsalt
does not open with the passphrase (pulumi/pulumi#4798), so a tenant can vanish from `stack ls`
without an error. Here every Pulumi.<stack>.yaml is opened with the one passphrase, by name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.backup.custody import reused_passphrase_message, same_passphrase
from orchestrator.backup.marker import read_marker
from orchestrator.config.private_files import dir_problem
from orchestrator.config.secrets_provider import check_passphrase_env, read_passphrase_file
from orchestrator.config.settings import Settings
from orchestrator.config.stack_file import load_stack_file
from orchestrator.core.errors import EdgeError
from orchestrator.core.names import stack_name_from_path
from orchestrator.engine.setup import install_hint, pinned_cli_version

CLI_VERSION = re.compile(r"v?(\d+\.\d+\.\d+)")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def parse_cli_version(output: str) -> str | None:
    match = CLI_VERSION.match(output.strip())
    return match.group(1) if match else None


def check_pulumi_cli(expected: str, which: Callable[[str], str | None] = shutil.which) -> Check:
    binary = which("pulumi")
    if binary is None:
        return Check("pulumi cli", False, f"not on PATH; {install_hint()}")
    try:
        proc = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("pulumi cli", False, f"{binary} version failed: {type(exc).__name__}")
    found = parse_cli_version(proc.stdout) if proc.returncode == 0 else None
    if found is None:
        return Check("pulumi cli", False, f"{binary} version gave no version (exit {proc.returncode})")
    if found != expected:
        return Check("pulumi cli", False, f"{binary} is v{found}, expected v{expected}; {install_hint()}")
    return Check("pulumi cli", True, f"{binary} v{found}")


def check_private_dir(name: str, path: Path) -> Check:
    problem = dir_problem(path)
    return Check(name, problem is None, problem or f"{path} is 0700")


R2_KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
"""Where the Pulumi CLI's S3 driver (AWS SDK v2 default chain) takes the R2 key pair from."""


def check_state_backend(settings: Settings, environ: Mapping[str, str]) -> Check:
    """Which backend the fleet uses, that a shared one has its key pair, and that a hand-run
    `pulumi` (PULUMI_BACKEND_URL, set by the VPS env file) would see the same state."""
    name = "state backend"
    backend = settings.backend
    raw = environ.get("PULUMI_BACKEND_URL")
    if raw and raw.rstrip("/") != backend.url.rstrip("/"):
        return Check(
            name,
            False,
            f"PULUMI_BACKEND_URL names another state than the fleet's ({backend.describe()}): a hand-run "
            "pulumi would not see the fleet's stacks; set it to the same URL (CLAWDBOT_STATE_BACKEND)",
        )
    if not backend.shared:
        return Check(name, True, backend.describe())
    missing = [key for key in R2_KEY_VARIABLES if not environ.get(key)]
    if missing:
        return Check(
            name,
            False,
            f"{backend.describe()}: {' and '.join(missing)} not set; the Pulumi CLI needs the R2 key pair "
            "(on a VPS: /etc/clawdbot/r2.env, docs/cluster.md)",
        )
    return Check(
        name,
        True,
        f"{backend.describe()}; its lock files are not atomic: drive it from one node, "
        "or from several through --engine temporal",
    )


def check_passphrase_file(path: Path) -> tuple[Check, str | None]:
    try:
        passphrase = read_passphrase_file(path)
    except EdgeError as exc:
        return Check("passphrase file", False, str(exc)), None
    return Check("passphrase file", True, f"{path} is owner-only"), passphrase


def check_passphrase_variable(path: Path) -> Check:
    """PULUMI_CONFIG_PASSPHRASE, if inherited, must not outrank the passphrase file with another value."""
    try:
        check_passphrase_env(path)
    except EdgeError as exc:
        return Check("passphrase variable", False, str(exc))
    return Check("passphrase variable", True, "PULUMI_CONFIG_PASSPHRASE unset or equal to the passphrase file")


def check_backup_passphrase(backup_file: Path, state_file: Path, state_passphrase: str | None) -> Check:
    """The backup passphrase file is owner-only and holds something other than the state passphrase."""
    name = "backup passphrase"
    try:
        backup = read_passphrase_file(backup_file)
    except EdgeError as exc:
        return Check(name, False, str(exc))
    if state_passphrase is None:
        return Check(name, True, f"{backup_file} is owner-only (not compared: the state passphrase file is unusable)")
    if same_passphrase(backup, state_passphrase):
        return Check(name, False, reused_passphrase_message(backup_file, state_file))
    return Check(name, True, f"{backup_file} is owner-only and differs from the state passphrase")


def check_stacks(project_dir: Path, passphrase: str | None) -> list[Check]:
    # By stack name, so the platform stack `prod` comes before its tenants `prod.<tenant>`.
    files = sorted((p for p in project_dir.glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml"), key=stack_name_from_path)
    if not files:
        return [Check("stacks", False, f"no Pulumi.<stack>.yaml files in {project_dir}")]
    if passphrase is None:
        return [Check("stacks", False, "not checked: the passphrase file is unusable")]
    checks = []
    for path in files:
        try:
            stack = load_stack_file(path)
            if stack.encryption_salt is None:
                checks.append(Check(f"stack {stack.stack}", True, "no secrets yet (no encryptionsalt)"))
                continue
            stack.crypter(passphrase)
        except EdgeError as exc:
            checks.append(Check(f"stack {stack_name_from_path(path)}", False, str(exc)))
            continue
        checks.append(Check(f"stack {stack.stack}", True, "encryptionsalt opens with the passphrase"))
    return checks


def check_disk(path: Path, min_free_mb: int) -> Check:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_mb = shutil.disk_usage(probe).free // (1 << 20)
    if free_mb < min_free_mb:
        return Check("free disk", False, f"{free_mb} MiB free at {probe}, below {min_free_mb} MiB")
    return Check("free disk", True, f"{free_mb} MiB free at {probe}")


def check_backup(marker: Path, max_age_hours: float, now: datetime) -> Check:
    try:
        last = read_marker(marker)
    except EdgeError as exc:
        return Check("backup", False, str(exc))
    if last is None:
        return Check("backup", False, f"no completed backup recorded in {marker}; run `backup create`")
    age_hours = (now - last.created_at).total_seconds() / 3600
    detail = f"last {last.backup_id} to s3://{last.bucket}, {age_hours:.1f} h ago"
    if age_hours > max_age_hours:
        return Check("backup", False, f"{detail}: older than {max_age_hours:g} h")
    return Check("backup", True, detail)


def run_checks(
    settings: Settings, now: datetime | None = None, environ: Mapping[str, str] | None = None
) -> list[Check]:
    passphrase_check, passphrase = check_passphrase_file(settings.passphrase_file)
    return [
        check_pulumi_cli(pinned_cli_version()),
        check_state_backend(settings, os.environ if environ is None else environ),
        # A shared (s3) backend keeps nothing in the state dir.
        *([] if settings.backend.shared else [check_private_dir("state dir", settings.state_dir)]),
        passphrase_check,
        check_passphrase_variable(settings.passphrase_file),
        check_backup_passphrase(settings.backup_passphrase_file, settings.passphrase_file, passphrase),
        *check_stacks(settings.project_dir, passphrase),
        check_disk(settings.state_dir, settings.min_free_disk_mb),
        check_backup(settings.backup_marker, settings.backup_max_age_hours, now or datetime.now(UTC)),
    ]
