"""`platform init`: the platform stack from flags or prompts, validated as every reader validates it.

Refuses an operator's file without --force (then only clawdbot:platform changes), replaces the
example setup-vps.sh copies, never leaves half a file, and what it writes is what `plan` reads.
"""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import orchestrator.cli.platform as platform_cli
import orchestrator.config.platform_stack as platform_stack
import orchestrator.config.stack_writer as stack_writer
from orchestrator.cli import cli
from orchestrator.config.platform_stack import EXAMPLE, validate_platform
from orchestrator.config.stack_file import load_stack_file
from orchestrator.config.tenant_config import load_platform_spec
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import ConfigError
from orchestrator.fleet.audit import read_events

ACCOUNT = "0123456789abcdef0123456789abcdef"
BASIC = ["--account-id", ACCOUNT, "--compatibility-date", "2026-03-01"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text())
    monkeypatch.setenv("CLAWDBOT_PROJECT_DIR", str(project))
    monkeypatch.setenv("CLAWDBOT_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    return project


def init(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["platform", "init", *args], input=stdin)


def _error_lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("Error: ")]


def test_flags_write_a_file_plan_reads(project: Path, tmp_path: Path) -> None:
    result = init(*BASIC, "--environment", "staging")
    assert result.exit_code == 0, result.output
    path = project / "Pulumi.prod.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    spec = load_platform_spec(project)
    assert (spec.account_id, spec.environment, spec.isolation) == (ACCOUNT, "staging", "workers")
    assert spec.compatibility_date == dt.date(2026, 3, 1)
    assert f"wrote {path}: account {ACCOUNT}, environment staging" in result.output
    plan = CliRunner().invoke(cli, ["plan", "--stack", "prod"])
    assert plan.exit_code == 0 and "+ Platform clawdbot-staging" in plan.output, plan.output
    assert [(e.operation, e.stack) for e in read_events(tmp_path / "audit.jsonl")] == [("platform-init", "prod")]
    assert [p.name for p in project.iterdir()] == ["Pulumi.yaml", "Pulumi.prod.yaml"] or len(
        list(project.iterdir())
    ) == 2


def test_every_field_can_be_given_and_dispatch_mode_reads_back(project: Path) -> None:
    result = init(
        *BASIC,
        "--isolation", "dispatch",
        "--compatibility-flag", "nodejs_compat",
        "--no-observability",
        "--logs-sampling-rate", "0.25",
        "--plan", "standard=50,50", "--plan", "pro=200,500",
        "--default-plan", "pro",
        "--saas-zone-id", "fedcba9876543210fedcba9876543210", "--saas-zone-name", "edge.example.net",
        "--fallback-origin", "origin.edge.example.net",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = load_platform_spec(project)
    assert spec.isolation == "dispatch" and spec.compatibility_flags == ["nodejs_compat"]
    assert spec.observability is False and spec.logs_sampling_rate == 0.25
    assert {k: (v.cpu_ms, v.subrequests) for k, v in spec.plans.items()} == {"standard": (50, 50), "pro": (200, 500)}
    assert spec.default_plan == "pro" and spec.saas_zone is not None and spec.saas_zone.name == "edge.example.net"
    assert spec.fallback_origin == "origin.edge.example.net"


def test_every_scalar_is_quoted_so_no_yaml_reads_it_differently(project: Path) -> None:
    # All digits and one `e`: a float under YAML 1.2 (go-yaml, the Pulumi CLI), text under 1.1.
    account = "11111111111111111111e11111111111"
    assert init("--account-id", account, "--compatibility-date", "2026-03-01").exit_code == 0
    text = (project / "Pulumi.prod.yaml").read_text()
    assert f'account_id: "{account}"' in text and 'compatibility_date: "2026-03-01"' in text
    assert load_stack_file(project / "Pulumi.prod.yaml").config["clawdbot:platform"]["account_id"] == account


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--account-id", "0123", "--compatibility-date", "2026-03-01"], "clawdbot:platform.account_id"),
        (["--account-id", ACCOUNT + "\nconfig:", "--compatibility-date", "2026-03-01"], "clawdbot:platform.account_id"),
        ([*BASIC, "--environment", "Prod"], "clawdbot:platform.environment"),
        ([*BASIC, "--environment", "prod\n  cloudflare:baseUrl: x"], "clawdbot:platform.environment"),
        (["--account-id", ACCOUNT, "--compatibility-date", "2999-01-01"], "clawdbot:platform.compatibility_date"),
        (["--account-id", ACCOUNT, "--compatibility-date", "01/03/2026"], "clawdbot:platform.compatibility_date"),
        ([*BASIC, "--compatibility-flag", "Bad Flag"], "clawdbot:platform.compatibility_flags[0]"),
        ([*BASIC, "--logs-sampling-rate", "0"], "clawdbot:platform.logs_sampling_rate"),
        ([*BASIC, "--default-plan", "gold"], "clawdbot:platform.default_plan"),
        ([*BASIC, "--saas-zone-id", "fedcba9876543210fedcba9876543210", "--saas-zone-name", "edge.example.net"],
         "clawdbot:platform.fallback_origin"),
        ([*BASIC, "--saas-zone-id", "nothex", "--saas-zone-name", "edge.example.net",
          "--fallback-origin", "o.edge.example.net"], "clawdbot:platform.saas_zone.id"),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_error_naming_the_field_and_writes_nothing(
    project: Path, args: list[str], field: str
) -> None:
    result = init(*args)
    assert result.exit_code == 1, result.output
    (line,) = _error_lines(result)
    assert line.startswith(f"Error: stack prod: {field}: ")
    assert sorted(p.name for p in project.iterdir()) == ["Pulumi.yaml"]  # no file, no temp file


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["--compatibility-date", "2026-03-01"], "--account-id"), (["--account-id", ACCOUNT], "--compatibility-date")],
)
def test_without_a_terminal_a_missing_required_flag_is_a_usage_error(project: Path, args: list[str], flag: str) -> None:
    result = init(*args)
    assert result.exit_code == 2 and f"{flag} is required" in result.output
    assert not (project / "Pulumi.prod.yaml").exists()


@pytest.mark.parametrize(
    ("args", "flag"), [([*BASIC, "--isolation", "lambda"], "--isolation"), ([*BASIC, "--plan", "x"], "--plan")]
)
def test_a_malformed_flag_is_a_usage_error(project: Path, args: list[str], flag: str) -> None:
    result = init(*args)
    assert result.exit_code == 2 and flag in result.output
    assert not (project / "Pulumi.prod.yaml").exists()


def test_on_a_terminal_it_prompts_for_what_is_missing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform_cli, "_interactive", lambda: True)
    result = init("--environment", "staging", stdin=f"{ACCOUNT}\n2026-02-01\ndispatch\n")
    assert result.exit_code == 0, result.output
    assert "Environment" not in result.output  # given as a flag: not asked
    assert "Cloudflare account id" in result.output and "Isolation" in result.output
    spec = load_platform_spec(project)
    assert (spec.account_id, spec.environment, str(spec.compatibility_date), spec.isolation) == (
        ACCOUNT, "staging", "2026-02-01", "dispatch",
    )  # fmt: skip


def test_the_prompts_offer_todays_date_and_the_defaults(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform_cli, "_interactive", lambda: True)
    result = init(stdin=f"{ACCOUNT}\n\n\n\n")
    assert result.exit_code == 0, result.output
    spec = load_platform_spec(project)
    assert (spec.environment, spec.isolation) == ("prod", "workers")
    assert spec.compatibility_date == dt.datetime.now(dt.UTC).date()


def test_the_shipped_example_is_replaced_without_force(project: Path) -> None:
    # What setup-vps.sh copies into a fresh project directory.
    (project / "Pulumi.prod.yaml").write_bytes(EXAMPLE.read_bytes())
    assert init(*BASIC, "--environment", "edge").exit_code == 0
    assert load_platform_spec(project).environment == "edge"


OPERATORS_FILE = """\
# Our platform: do not edit by hand on Fridays.
encryptionsalt: v1:c2FsdHNhbHQ=:v1:bm9uY2Vub25jZQ==:Y2lwaGVydGV4dA==
config:
  cloudflare:apiToken:
    secure: v1:bm9uY2Vub25jZQ==:Y2lwaGVydGV4dA==
  clawdbot:platform:
    account_id: fedcba9876543210fedcba9876543210
    environment: prod
    compatibility_date: "2026-01-01"
"""


def test_an_operators_file_is_refused_without_force_and_left_as_it_was(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    path.write_text(OPERATORS_FILE)
    result = init(*BASIC)
    assert result.exit_code == 1
    assert _error_lines(result) == [
        f"Error: {path} already holds the platform settings; pass --force to replace clawdbot:platform "
        "(encryptionsalt, other keys and comments stay)"
    ]
    assert path.read_text() == OPERATORS_FILE


def test_force_changes_only_the_platform_settings(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    path.write_text(OPERATORS_FILE)
    path.chmod(0o640)
    result = init(*BASIC, "--environment", "staging", "--force")
    assert result.exit_code == 0, result.output
    text = path.read_text()
    before, after = OPERATORS_FILE.splitlines(), text.splitlines()
    assert after[:5] == before[:5]  # the comment, the salt, the secret: byte for byte
    assert load_stack_file(path).encryption_salt == "v1:c2FsdHNhbHQ=:v1:bm9uY2Vub25jZQ==:Y2lwaGVydGV4dA=="
    spec = load_platform_spec(project)
    assert (spec.account_id, spec.environment) == (ACCOUNT, "staging")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the operator's mode stays
    assert "note: environment prod -> staging renames every tenant's resources" in result.output
    assert "note: a new account id moves every tenant" in result.output


def test_force_refuses_a_file_it_cannot_read_and_leaves_it(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    path.write_text("config:\n  clawdbot:platform: {account_id: a, account_id: b}\n")  # duplicate key
    result = init(*BASIC, "--force")
    assert result.exit_code == 1 and len(_error_lines(result)) == 1
    assert path.read_text() == "config:\n  clawdbot:platform: {account_id: a, account_id: b}\n"


def test_force_refuses_when_the_rest_of_the_file_is_invalid(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    path.write_text(OPERATORS_FILE + "  clawdbot:platfrom: {}\n")  # a typo'd key the readers refuse
    result = init(*BASIC, "--force")
    assert result.exit_code == 1 and "clawdbot:platfrom" in result.output
    assert path.read_text() == OPERATORS_FILE + "  clawdbot:platfrom: {}\n"


def test_the_checkouts_own_file_is_never_taken_for_the_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Running in the checkout, Pulumi.prod.yaml IS the example path: it may hold the operator's edits.
    own = tmp_path / "Pulumi.prod.yaml"
    own.write_text(OPERATORS_FILE)
    monkeypatch.setattr(platform_stack, "EXAMPLE", own)
    spec = validate_platform({"account_id": ACCOUNT, "compatibility_date": "2026-03-01"})
    with pytest.raises(ConfigError, match="pass --force"):
        platform_stack.write_platform_stack(tmp_path, spec, [], force=False)
    assert own.read_text() == OPERATORS_FILE


def test_a_file_appearing_meanwhile_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text("someone else's\n")
    with pytest.raises(ConfigError, match="already exists; nothing was changed"):
        stack_writer.put_in_place(path, "config: {}\n", lambda tmp: None, replace=False)
    assert path.read_text() == "someone else's\n" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_copy_failing_its_check_never_lands(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text("before\n")

    def refuse(tmp: Path) -> None:
        raise ConfigError("refused")

    with pytest.raises(ConfigError, match="refused"):
        stack_writer.put_in_place(path, "after\n", refuse, replace=True)
    assert path.read_text() == "before\n" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_the_written_document_is_plain_json_values() -> None:
    spec = validate_platform({"account_id": ACCOUNT, "compatibility_date": "2026-03-01", "isolation": "dispatch"})
    text = platform_stack.render_platform_stack(platform_stack.platform_value(spec, ["isolation"]))
    values = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("    ")]
    assert all(json.loads(value) is not None for value in values)
