"""An inherited PULUMI_CONFIG_PASSPHRASE must not outrank the passphrase file with another value.

Upstream fact (pulumi/pulumi pkg/secrets/passphrase/manager.go `readPassphrase`, lines 378-392 at
1b5949891b): `os.LookupEnv("PULUMI_CONFIG_PASSPHRASE")` is consulted first and wins whenever the
variable is set, even to "" and untrimmed; PULUMI_CONFIG_PASSPHRASE_FILE is read only when it is
unset, and its content is `strings.TrimSpace`d. The Automation API hands our whole environment to
every CLI it starts (pulumi/automation/_cmd.py: `env = {**os.environ, **additional_env}`). So the
only safe inherited value is exactly the file's trimmed content; everything else is refused, by
every command that touches stacks or secrets, in one line naming both sources.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.config.secrets_provider import PASSPHRASE_ENV, check_passphrase_env, read_state_passphrase
from orchestrator.config.settings import Settings
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import SetupError
from orchestrator.engine.stacks import AutomationExecutor
from orchestrator.fleet.changes import Rendered
from orchestrator.testing.simulated import SimulatedExecutor

PASSPHRASE = "file passphrase 7f3a"


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(f"  {PASSPHRASE}\n")  # the CLI trims the file's content
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (PASSPHRASE, False),  # equal to the trimmed file: what the CLI would use either way
        ("", True),  # set but empty: the CLI uses the empty passphrase
        (f"  {PASSPHRASE}\n", True),  # the variable is not trimmed
        ("a different one 91c2", True),
        (PASSPHRASE.upper(), True),
    ],
)
def test_only_the_files_exact_passphrase_is_accepted_in_the_variable(
    passphrase_file: Path, value: str, refused: bool
) -> None:
    environ = {PASSPHRASE_ENV: value}
    if not refused:
        check_passphrase_env(passphrase_file, environ)
        assert read_state_passphrase(passphrase_file, environ) == PASSPHRASE
        return
    with pytest.raises(SetupError) as caught:
        read_state_passphrase(passphrase_file, environ)
    message = str(caught.value)
    assert PASSPHRASE_ENV in message and str(passphrase_file) in message and "\n" not in message
    assert PASSPHRASE not in message and (not value.strip() or value.strip() not in message)


def test_unset_variable_is_fine_and_a_missing_file_is_named(tmp_path: Path) -> None:
    check_passphrase_env(tmp_path / "absent", {})
    with pytest.raises(SetupError, match=f"{PASSPHRASE_ENV} is set and the passphrase file cannot be compared"):
        check_passphrase_env(tmp_path / "absent", {PASSPHRASE_ENV: "x"})


def _project(tmp_path: Path, passphrase_file: Path) -> Settings:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.prod.acme.yaml"):
        shutil.copy(REPO_ROOT / name, project / name)
    return Settings(
        project_dir=project,
        state_dir=tmp_path / "state",
        work_root=tmp_path / "work",
        passphrase_file=passphrase_file,
        audit_log=tmp_path / "audit.jsonl",
        local_edge_dir=tmp_path / "local-edge",
    )


STACK_COMMANDS = [
    ["secrets", "set", "acme", "WEBHOOK_SECRET"],
    ["secrets", "rotate", "acme"],
    ["preview", "--all"],
    ["up", "--all"],
    ["refresh", "--all"],
    ["destroy", "--all", "--yes"],
    ["drift", "--all"],
    ["status", "--all", "--no-health"],
    ["recover", "--all"],
    ["outputs", "--tenant", "acme"],
    ["local", "up", "acme"],
    ["local", "push-config", "acme"],
]


@pytest.mark.parametrize("argv", STACK_COMMANDS, ids=" ".join)
def test_every_stack_or_secret_command_refuses_a_different_inherited_passphrase(
    tmp_path: Path, passphrase_file: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    settings = _project(tmp_path, passphrase_file)
    for field in ("project_dir", "state_dir", "work_root", "passphrase_file", "audit_log", "local_edge_dir"):
        monkeypatch.setenv(f"CLAWDBOT_{field.upper()}", str(getattr(settings, field)))
    monkeypatch.setenv(PASSPHRASE_ENV, "inherited from some other shell")
    sim = SimulatedExecutor(health_base="http://127.0.0.1:1")
    deps = FleetDeps(
        executor=lambda s, url: sim, render=lambda p: lambda s: Rendered(f"sim-{s}", 1), settings=lambda: settings
    )
    before = {p.name: p.read_bytes() for p in settings.project_dir.iterdir()}
    result: Result = CliRunner().invoke(cli, argv, obj=deps, input="a-secret-value\n")
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: {PASSPHRASE_ENV} is set and differs from the passphrase file {passphrase_file}")
    assert "a-secret-value" not in result.output and "inherited from some other shell" not in result.output
    assert {p.name: p.read_bytes() for p in settings.project_dir.iterdir()} == before
    assert sim.calls == []


def test_the_executor_itself_refuses_it_too(
    tmp_path: Path, passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Automation API path without the CLI front (e.g. a script building its own executor).
    settings = _project(tmp_path, passphrase_file)
    monkeypatch.setenv(PASSPHRASE_ENV, "")
    with pytest.raises(SetupError, match=f"{PASSPHRASE_ENV} is set to the empty string and differs"):
        AutomationExecutor(settings, command=object(), program=lambda: None)  # type: ignore[arg-type]
