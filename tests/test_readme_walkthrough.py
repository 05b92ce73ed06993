"""The README's "Deploying for real" steps, run as written on a fresh copy with a new HOME.

Every shell line of that section's code blocks runs, in order, in one bash (so `umask` and `export`
carry over as they would for a reader), except the ones that need the Pulumi CLI (`pulumi ...`),
which cannot be installed here. A `secrets set` line reads its value from stdin, as the README says
it may; the walkthrough gives each one its own value by pointing the shell's stdin at a file first,
leaving the line itself untouched. Then the result is checked: owner-only files and directories, a
salt made from the new passphrase, and every declared secret of the tenant set.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.config.secrets_provider import read_passphrase_file
from orchestrator.config.stack_file import read_config
from orchestrator.config.tenant_config import unset_secrets
from orchestrator.core.contract import REPO_ROOT

NEEDS_CLI = ("pulumi", "curl")
SECRETS_SET = re.compile(r"-m orchestrator secrets set (?P<tenant>\S+) (?P<name>\S+)")


def deploying_for_real_commands(readme: str) -> list[str]:
    """The shell lines of the section's fenced code blocks, in order, as written."""
    section = readme.split("## Deploying for real", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _fresh_copy(dest: Path) -> Path:
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z"], capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("needs a git checkout to copy the tracked files from")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    venv = Path(sys.prefix)
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the repo's virtualenv (step 1: bash scripts/test.sh creates it)")
    (dest / ".venv").symlink_to(venv, target_is_directory=True)
    return dest


def test_the_section_still_has_the_steps_this_test_walks() -> None:
    commands = deploying_for_real_commands((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert any(c.startswith("umask 077; mkdir -p ~/.clawdbot") for c in commands)
    assert any(c.startswith("unset PULUMI_CONFIG_PASSPHRASE") for c in commands)
    assert [m["name"] for c in commands if (m := SECRETS_SET.search(c))] == ["WEBHOOK_SECRET", "STRIPE_KEY"]


def test_deploying_for_real_runs_as_written_on_a_fresh_copy(tmp_path: Path) -> None:
    repo = _fresh_copy(tmp_path / "repo")
    home = tmp_path / "home"
    home.mkdir()
    commands = deploying_for_real_commands((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    script, skipped, values = ["set -e"], [], {}
    for index, command in enumerate(commands):
        if command.split()[0] in NEEDS_CLI:
            skipped.append(command)
            continue
        match = SECRETS_SET.search(command)
        if match:
            value = f"value-of-{match['name']}-{index}"
            values[match["name"]] = value
            (tmp_path / f"stdin-{index}").write_text(value + "\n")
            script.append(f"exec < {tmp_path / f'stdin-{index}'}")
        script.append(command)
    assert skipped and all(c.split()[0] == "pulumi" for c in skipped), skipped
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        # A stale variable in the reader's shell: the README's `unset` line must deal with it.
        "PULUMI_CONFIG_PASSPHRASE": "left over from another project",
    }
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    clawdbot = home / ".clawdbot"
    for directory in (clawdbot, clawdbot / "state"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE((clawdbot / "passphrase").stat().st_mode) == 0o600
    passphrase = read_passphrase_file(clawdbot / "passphrase")
    assert len(passphrase) >= 40, "32 random bytes, base64"

    config = read_config(repo / "Pulumi.prod.acme.yaml", passphrase)
    assert config["clawdbot:secrets"] == values
    assert unset_secrets(repo, "prod.acme") == []
    for value in values.values():
        assert value not in done.stdout + done.stderr
