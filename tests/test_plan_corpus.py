"""`plan` on any stack file (valid, invalid or hostile): exit 0, or exit 1 with exactly one `Error:`
line on stderr and nothing on stdout; never a traceback, never a secret; in bounded memory."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from stack_corpus import ALL, CANARY, CARELESS, HOSTILE, VALID, Case

from orchestrator.cli import cli
from orchestrator.core.contract import REPO_ROOT

MEMORY_LIMIT = 1024 * 1024 * 1024
"""Address space for one `plan` process: the Python runtime, pulumi and the provider SDK fit in
well under this; expanding an alias bomb or a 20,000-level document does not."""


def _project(tmp_path: Path, text: bytes) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    path = tmp_path / "Pulumi.prod.acme.yaml"
    path.write_bytes(text)
    return path


def _check(code: int, stdout: str, stderr: str, error: str | None) -> None:
    assert "Traceback" not in stdout + stderr
    assert CANARY not in stdout + stderr
    if error is None:
        assert code == 0, stderr
        assert stdout.startswith("Stack prod.acme: ") and stderr == ""
        return
    assert code == 1, (code, stdout[:300], stderr[:300])
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), stderr[:600]
    assert lines[0].startswith("Error: stack prod.acme: "), lines[0][:300]
    assert error in lines[0], lines[0][:600]
    assert len(lines[0]) < 600


@pytest.mark.parametrize(("text", "error"), [(t, e) for _, t, e in ALL], ids=[i for i, _, _ in ALL])
def test_plan_answers_every_stack_file_in_one_line(tmp_path: Path, text: bytes, error: str | None) -> None:
    path = _project(tmp_path, text)
    result = CliRunner().invoke(cli, ["plan", "--config", str(path)])
    _check(result.exit_code, result.stdout, result.stderr, error)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _by_id(*ids: str) -> list[Case]:
    chosen = [case for case in ALL if case[0] in ids]
    assert len(chosen) == len(ids)
    return chosen


# Each is a separate interpreter paying the CLI's start-up, so: every way to exhaust memory or time
# once, the commonest mistakes, and a valid file to show the limit leaves room for a real plan.
IN_A_PROCESS = _by_id(
    "alias-bomb-config", "deep-flow-sequence", "huge-document", "many-values", "secret-plain-text", "example"
)


@pytest.mark.parametrize(("text", "error"), [(t, e) for _, t, e in IN_A_PROCESS], ids=[i for i, _, _ in IN_A_PROCESS])
def test_the_real_plan_command_in_bounded_memory(tmp_path: Path, text: bytes, error: str | None) -> None:
    path = _project(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "plan", "--config", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        preexec_fn=_limit_memory,
        cwd=REPO_ROOT,
        timeout=300,  # a hang guard, not a measurement
    )
    _check(done.returncode, done.stdout, done.stderr, error)


PLAINTEXT_SECRETS = [case for case in CARELESS if "is not encrypted" in (case[2] or "")]


@pytest.mark.parametrize("text", [t for _, t, _ in PLAINTEXT_SECRETS], ids=[i for i, _, _ in PLAINTEXT_SECRETS])
def test_tenants_show_and_policy_check_refuse_a_plaintext_secret_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: bytes
) -> None:
    _project(tmp_path, text)
    monkeypatch.setenv("CLAWDBOT_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("CLAWDBOT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CLAWDBOT_WORK_ROOT", str(tmp_path / "work"))
    show = CliRunner().invoke(cli, ["tenants", "show", "acme"])
    policy = CliRunner().invoke(cli, ["policy", "check", "--stack", "prod.acme", "--project-dir", str(tmp_path)])
    for result in (show, policy):
        assert result.exit_code == 1, result.output
        assert "is not encrypted" in result.output and "secrets set acme" in result.output
        assert CANARY not in result.output and "Traceback" not in result.output


def test_tenants_show_masks_every_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, VALID[0][1])
    monkeypatch.setenv("CLAWDBOT_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("CLAWDBOT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CLAWDBOT_WORK_ROOT", str(tmp_path / "work"))
    result = CliRunner().invoke(cli, ["tenants", "show", "acme"])
    assert result.exit_code == 0, result.output
    assert '"clawdbot:secrets": {\n      "WEBHOOK_SECRET": "[secret]",\n      "STRIPE_KEY": "[secret]"' in result.output
    assert "v1:" not in result.output


def test_the_corpus_covers_each_class() -> None:
    assert len(HOSTILE) >= 20 and len(CARELESS) >= 35 and len(VALID) >= 2
    assert len({case[0] for case in ALL}) == len(ALL)
