"""One stack through the Automation API, with a stand-in `PulumiCommand`.

The stand-in only answers the way the CLI's output is shaped, so we can test what we send (argv, env,
work dir) and how we map results and errors. It never stands for an operation having worked: the
tests that need the real CLI are marked `needs_pulumi_cli` and skip without it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from stack_fixtures import (
    API_TOKEN,
    PASSPHRASE,
    SCRIPT,
    STACK_FILE,
    URN,
    FakeCli,
    executor,
    last,
    program,
    stack_settings,
)

from orchestrator.config.settings import Settings
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import (
    SetupError,
    StackBusyError,
    StackError,
    StackMissingError,
    TransientStackError,
)
from orchestrator.engine.records import FileDeployedStore
from orchestrator.engine.setup import install_hint
from orchestrator.engine.stacks import AutomationExecutor
from orchestrator.fleet.ports import Operation, OpRequest


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", API_TOKEN)
    return stack_settings(tmp_path)


def test_up_creates_the_stack_and_never_puts_a_secret_on_argv(settings: Settings) -> None:
    cli = FakeCli()
    cli.outputs = {
        "bundle_hash": ("ab" * 32, False),
        "health_url": ("https://edge.acme.example.com/_edge/health", False),
        "relay_key": ("super-secret-relay", True),
    }
    outcome = executor(settings, cli).run(OpRequest("prod.acme", Operation.UP))

    argvs = [args for args, _, _ in cli.calls]
    assert argvs[0] == ["stack", "select", "--stack", "prod.acme"]
    assert argvs[1] == ["stack", "init", "prod.acme", "--secrets-provider", "passphrase"]
    assert argvs[2][:3] == ["up", "--yes", "--skip-preview"]
    assert not any(a[0] == "config" for a in argvs), "config must never be set through the CLI"
    flat = " ".join(" ".join(a) for a in argvs)
    for secret in (PASSPHRASE, API_TOKEN, "super-secret-relay", "v1:ciphertext-only"):
        assert secret not in flat
    assert "--show-secrets" not in argvs[-1]  # history for the summary: no config secrets requested

    env = cli.calls[2][2]
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(settings.passphrase_file.resolve())
    assert "PULUMI_CONFIG_PASSPHRASE" not in env
    assert env["PULUMI_BACKEND_URL"] == f"file://{settings.state_dir.resolve()}"
    assert env["CLOUDFLARE_BASE_URL"] == "http://127.0.0.1:9999/client/v4"
    assert PASSPHRASE not in json.dumps(env) and API_TOKEN not in json.dumps(env)

    assert outcome.outputs == {"bundle_hash": "ab" * 32, "health_url": "https://edge.acme.example.com/_edge/health"}
    assert outcome.changes == {"update": 1, "same": 8}


def test_work_dir_is_persistent_private_and_holds_the_stack_file(settings: Settings) -> None:
    cli = FakeCli()
    executor(settings, cli).run(OpRequest("prod.acme", Operation.UP))
    work = settings.work_root / "prod.acme"
    assert {c[1] for c in cli.calls} == {str(work)}
    assert (work / "Pulumi.prod.acme.yaml").read_text() == STACK_FILE
    assert "url: file://" in (work / "Pulumi.yaml").read_text()
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    assert stat.S_IMODE((work / "Pulumi.prod.acme.yaml").stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700
    assert (work / "last-up.log").read_text() == "Updating (prod.acme): done\n"


def test_missing_stack_file_names_the_tenant(settings: Settings) -> None:
    with pytest.raises(StackError, match=r"stack prod\.ghost: no stack file .*Pulumi\.prod\.ghost\.yaml"):
        executor(settings, FakeCli()).run(OpRequest("prod.ghost", Operation.UP))


def test_preview_of_a_missing_stack_says_how_to_create_it(settings: Settings) -> None:
    with pytest.raises(StackMissingError, match=r"prod\.acme \(tenant acme\).*orchestrator up --tenant acme"):
        executor(settings, FakeCli()).run(OpRequest("prod.acme", Operation.PREVIEW))


def test_locked_stack_is_busy_and_points_at_recover(settings: Settings) -> None:
    cli = FakeCli()
    cli.stacks.add("prod.acme")
    cli.failures["up"] = ("", "error: the stack is currently locked by 1 lock(s). Either wait ...")
    with pytest.raises(StackBusyError, match=r"recover --tenant acme"):
        executor(settings, cli).run(OpRequest("prod.acme", Operation.UP))


@pytest.mark.parametrize(
    ("stdout", "stderr", "kind", "text"),
    [
        ("", "error: 400 Bad Request: a namespace with this title already exists [code: 10014]", StackError, "10014"),
        ("python inline source runtime error: boom", "", StackError, "the Pulumi program failed"),
        ("", "error: rpc error: code = UNAVAILABLE desc = connection refused", TransientStackError, "UNAVAILABLE"),
    ],
)
def test_command_errors_are_mapped(
    settings: Settings, stdout: str, stderr: str, kind: type[Exception], text: str
) -> None:
    cli = FakeCli()
    cli.stacks.add("prod.acme")
    cli.failures["up"] = (stdout, stderr)
    with pytest.raises(kind, match=text) as info:
        executor(settings, cli).run(OpRequest("prod.acme", Operation.UP))
    assert "stack prod.acme (tenant acme)" in str(info.value)
    assert "\n" not in str(info.value)


def test_error_text_is_redacted(settings: Settings) -> None:
    cli = FakeCli()
    cli.stacks.add("prod.acme")
    cli.failures["up"] = ("", f"error: 403 for token {API_TOKEN}")
    with pytest.raises(StackError) as info:
        executor(settings, cli).run(OpRequest("prod.acme", Operation.UP))
    assert API_TOKEN not in str(info.value) and "[redacted]" in str(info.value)


def test_preview_drift_is_read_from_events_not_exit_codes(settings: Settings) -> None:
    cli = FakeCli()
    cli.stacks.add("prod.acme")
    cli.events = [
        {
            "sequence": 1,
            "timestamp": 0,
            "resOutputsEvent": {
                "metadata": {"op": "update", "urn": URN, "type": SCRIPT, "provider": "", "diffs": ["content", "etag"]}
            },
        }
    ]
    outcome = executor(settings, cli).run(OpRequest("prod.acme", Operation.PREVIEW, drift_check=True))
    assert "--expect-no-changes" not in last(cli, "preview")  # drift comes from the structured result
    assert outcome.changes == {"update": 1}
    assert outcome.drift is not None and outcome.drift.drifted
    assert outcome.drift.findings[0].properties == ("content",)


def test_refresh_preview_only_and_clear_pending_creates_flags(settings: Settings) -> None:
    cli = FakeCli()
    cli.stacks.add("prod.acme")
    ex = executor(settings, cli)
    clean = ex.run(OpRequest("prod.acme", Operation.REFRESH, preview_only=True, drift_check=True))
    assert clean.drift is not None and not clean.drift.drifted
    assert last(cli, "refresh")[:2] == ["refresh", "--preview-only"]
    ex.run(OpRequest("prod.acme", Operation.REFRESH, clear_pending_creates=True))
    assert "--clear-pending-creates" in last(cli, "refresh") and "--yes" in last(cli, "refresh")


def test_rollback_applies_the_last_good_stack_file(settings: Settings) -> None:
    cli = FakeCli()
    ex = executor(settings, cli)
    with pytest.raises(StackError, match="no last good deployment"):
        ex.rollback("prod.acme", None)
    ex.run(OpRequest("prod.acme", Operation.UP))
    store = FileDeployedStore(settings, "clawdbot")
    store.mark_good("prod.acme")
    (settings.project_dir / "Pulumi.prod.acme.yaml").write_text(STACK_FILE.replace("id: acme", "id: broken"))
    ex.rollback("prod.acme", None)
    assert "id: acme" in (settings.work_root / "prod.acme" / "Pulumi.prod.acme.yaml").read_text()
    assert last(cli, "up")[:3] == ["up", "--yes", "--skip-preview"]
    assert "rollback to last good" in last(cli, "up")


def test_rollback_can_re_issue_the_last_good_file_under_a_newer_config_version(settings: Settings) -> None:
    cli = FakeCli()
    ex = executor(settings, cli)
    ex.run(OpRequest("prod.acme", Operation.UP))
    FileDeployedStore(settings, "clawdbot").mark_good("prod.acme")
    work = settings.work_root / "prod.acme"
    good = (work / "last-good.Pulumi.yaml").read_bytes()
    ex.rollback("prod.acme", 5)
    deployed = (work / "Pulumi.prod.acme.yaml").read_text()
    # Only the version line is new: the secret's ciphertext and the salt reach the engine untouched.
    assert deployed == STACK_FILE.replace("    id: acme\n", "    id: acme\n    config_version: 5\n")
    assert (work / "last-good.Pulumi.yaml").read_bytes() == good  # the last good itself is kept as it was
    assert "rollback to last good, re-issued as config_version 5" in last(cli, "up")


def test_state_dir_open_to_others_is_refused(settings: Settings) -> None:
    settings.state_dir.mkdir(mode=0o755)
    os.chmod(settings.state_dir, 0o755)
    with pytest.raises(SetupError, match="chmod 700"):
        executor(settings, FakeCli())


@pytest.mark.needs_pulumi_cli
@pytest.mark.skipif(shutil.which("pulumi") is None, reason="needs the Pulumi CLI: " + install_hint())
def test_real_cli_preview_of_an_unknown_stack(settings: Settings) -> None:
    ex = AutomationExecutor(settings, program=program)
    with pytest.raises(StackMissingError):
        ex.run(OpRequest("prod.acme", Operation.PREVIEW))


D1_TYPE = "cloudflare:index/d1Database:D1Database"
D1_URN = f"urn:pulumi:prod.acme::clawdbot::clawdbot:edge:TenantEdge${D1_TYPE}::acme-db"


def write_checkpoint(settings: Settings, resources: list[dict[str, Any]]) -> None:
    state = settings.state_dir / ".pulumi" / "stacks" / "clawdbot" / "prod.acme.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"checkpoint": {"latest": {"resources": resources}}}))


def test_destroy_excludes_protected_resources_and_says_how_to_remove_them(settings: Settings) -> None:
    cli = FakeCli()
    cli.stacks.add("prod.acme")
    ex = executor(settings, cli)
    write_checkpoint(
        settings,
        [
            {"urn": "urn:pulumi:prod.acme::clawdbot::pulumi:pulumi:Stack::x", "type": "pulumi:pulumi:Stack"},
            {"urn": D1_URN, "type": D1_TYPE, "custom": True, "protect": True},
        ],
    )
    outcome = ex.run(OpRequest("prod.acme", Operation.DESTROY))
    assert "--exclude-protected" in last(cli, "destroy")
    assert [k.urn for k in outcome.kept] == [D1_URN] and outcome.kept[0].kind == "D1 database"
    (advice,) = outcome.advice
    assert "kept protected D1 database acme-db" in advice
    assert f"pulumi state unprotect --stack prod.acme --yes '{D1_URN}'" in advice
    assert "python -m orchestrator destroy --tenant acme --yes" in advice
    assert "pulumi stack rm --stack prod.acme --force --yes" in advice
    assert f"PULUMI_CONFIG_PASSPHRASE_FILE={settings.passphrase_file.resolve()}" in advice
    assert PASSPHRASE not in advice


def test_rollback_keeps_the_failed_up_log(settings: Settings) -> None:
    cli = FakeCli()
    ex = executor(settings, cli)
    ex.run(OpRequest("prod.acme", Operation.UP))
    work = settings.work_root / "prod.acme"
    (work / "last-up.log").write_text("the failed up's output\n")
    FileDeployedStore(settings, "clawdbot").mark_good("prod.acme")
    ex.rollback("prod.acme", None)
    assert (work / "last-up.log").read_text() == "the failed up's output\n"
    assert (work / "last-rollback.log").read_text() == "Updating (prod.acme): done\n"


def test_the_dynamic_provider_process_can_import_our_code(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine runs `python -m pulumi.dynamic` in the work dir; it unpickles the D1 migrations
    provider, which needs `components` and `orchestrator` importable and this venv's packages."""
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider

    from components.d1_migrations import D1MigrationsProvider

    monkeypatch.setenv("PYTHONPATH", "/opt/site-extra")
    ex = executor(settings, FakeCli())
    ex.run(OpRequest("prod.acme", Operation.UP))
    env = ex.env_vars()
    assert env["PYTHONPATH"] == os.pathsep.join([str(REPO_ROOT), "/opt/site-extra"])
    assert env["PULUMI_RUNTIME_VIRTUALENV"] == sys.prefix
    work = settings.work_root / "prod.acme"
    project = (work / "Pulumi.yaml").read_text()
    assert "name: python" in project and f"virtualenv: {sys.prefix}" in project

    payload = serialize_provider(D1MigrationsProvider())
    python = str(Path(sys.prefix) / "bin" / "python")
    load = "import base64, sys, dill; dill.loads(base64.b64decode(sys.stdin.read())); print('ok')"
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def unpickle(extra: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-c", load], input=payload, cwd=work, env={**base, **extra}, capture_output=True, text=True
        )

    without = unpickle({})
    assert without.returncode != 0 and "No module named 'components'" in without.stderr  # the bug
    fixed = unpickle(env)
    assert fixed.returncode == 0 and fixed.stdout.strip() == "ok", fixed.stderr


def test_outputs_are_read_masked_without_show_secrets(settings: Settings) -> None:
    cli = FakeCli()
    cli.stacks.add("prod.acme")
    cli.outputs = {"bundle_hash": ("ab" * 32, False), "relay_key": ("super-secret-relay", True)}
    values = executor(settings, cli).outputs("prod.acme")
    assert values == {"bundle_hash": "ab" * 32, "relay_key": "[secret]"}
    argvs = [args for args, _, _ in cli.calls]
    assert ["stack", "output", "--json", "--stack", "prod.acme"] in argvs
    assert not any("--show-secrets" in a for a in argvs)


def test_cancel_runs_pulumi_cancel_for_the_stack(settings: Settings) -> None:
    cli = FakeCli()
    cli.stacks.add("prod.acme")
    executor(settings, cli).cancel("prod.acme")
    argv = last(cli, "cancel")
    assert "--yes" in argv and argv[argv.index("--stack") + 1] == "prod.acme"


def test_up_drops_secret_outputs_that_the_sdk_read_in_plaintext(settings: Settings) -> None:
    # Issue 11, item 11. Upstream fact (pulumi 3.272.0, pulumi/automation/_stack.py `Stack.up`:
    # `outputs = self.outputs()` after the update; _local_workspace.py `stack_outputs` runs
    # `stack output --json --show-secrets`): the plaintext of a secret output does reach this
    # process. What we promise is that it goes no further than the SDK's return value.
    cli = FakeCli()
    cli.outputs = {"bundle_hash": ("ab" * 32, False), "relay_key": ("super-secret-relay", True)}
    outcome = executor(settings, cli).run(OpRequest("prod.acme", Operation.UP))
    argvs = [args for args, _, _ in cli.calls]
    assert ["stack", "output", "--json", "--show-secrets", "--stack", "prod.acme"] in argvs
    assert outcome.outputs == {"bundle_hash": "ab" * 32}
    assert "super-secret-relay" not in repr(outcome)
    work = settings.work_root / "prod.acme"
    assert all("super-secret-relay" not in p.read_text() for p in work.rglob("*") if p.is_file())
