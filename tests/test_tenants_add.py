"""`tenants add`: every tenant field as a flag or from a YAML/JSON file, validated by `TenantSpec`.

Errors name the field (the one validation every reader applies), nothing is written on a failure,
and what is written reads back as the same spec in `plan`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.cli.tenant_fields import FLAGGED_FIELDS
from orchestrator.config.stack_file import load_stack_file
from orchestrator.config.tenant_config import load_tenant_spec
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.model import TenantSpec

ZONE = "3f1c9d2e8b7a6c5d4e3f2a1b0c9d8e7f"
FULL: dict[str, object] = {
    "id": "acme",
    "zone": {"id": ZONE, "name": "acme.example.com"},
    "routes": ["shop.acme.example.com/*", "api.acme.example.com/v1/*"],
    "custom_domains": ["edge.acme.example.com"],
    "crons": ["*/15 * * * *", "0 3 * * *"],
    "compatibility_date": "2026-02-01",
    "compatibility_flags": ["nodejs_compat"],
    "d1_location_hint": "weur",
    "d1_read_replication": "auto",
    "config_version": 7,
    "config": {"greeting": "Hello", "ratio": 1e5, "nested": {"list": [1, "0o17", None]}},
    "secret_names": ["WEBHOOK_SECRET", "STRIPE_KEY"],
    "limits": {"cpu_ms": 50, "subrequests": 40},
    "relay_key_generation": 2,
    "allow_apex_catch_all": True,
    "plan": "standard",
    "egress": ["api.stripe.com", "*.example.org"],
    "isolation": "workers",
    "keep_account_worker": False,
}
FULL_FLAGS = [
    "--zone-id", ZONE, "--zone-name", "acme.example.com",
    "--route", "shop.acme.example.com/*", "--route", "api.acme.example.com/v1/*",
    "--custom-domain", "edge.acme.example.com",
    "--cron", "*/15 * * * *", "--cron", "0 3 * * *",
    "--compatibility-date", "2026-02-01", "--compatibility-flag", "nodejs_compat",
    "--d1-location-hint", "weur", "--d1-read-replication", "auto",
    "--config-version", "7", "--config", json.dumps(FULL["config"]),
    "--secret-name", "WEBHOOK_SECRET", "--secret-name", "STRIPE_KEY",
    "--cpu-ms", "50", "--subrequests", "40", "--relay-key-generation", "2",
    "--allow-apex-catch-all", "--plan", "standard",
    "--egress", "api.stripe.com", "--egress", "*.example.org",
    "--isolation", "workers", "--no-keep-account-worker",
]  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        (project / name).write_text((REPO_ROOT / name).read_text())
    monkeypatch.setenv("CLAWDBOT_PROJECT_DIR", str(project))
    monkeypatch.setenv("CLAWDBOT_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("CLAWDBOT_WORK_ROOT", str(tmp_path / "work"))
    monkeypatch.setenv("CLAWDBOT_STATE_DIR", str(tmp_path / "state"))
    return project


def add(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["tenants", "add", *args], input=stdin)


def _errors(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("Error")]


def _stack_files(project: Path) -> list[str]:
    return sorted(p.name for p in project.iterdir())


def test_every_tenant_field_has_a_flag() -> None:
    # A field added to the model without a flag fails here (the class of "only a few").
    assert set(TenantSpec.model_fields) - {"id"} == FLAGGED_FIELDS
    command = cli.get_command(None, "tenants").get_command(None, "add")  # type: ignore[arg-type,union-attr]
    flags = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for flag in [f for f in FULL_FLAGS if f.startswith("--")]:
        assert flag in flags


def test_every_field_by_flag_reads_back_as_given(project: Path) -> None:
    result = add("acme", *FULL_FLAGS)
    assert result.exit_code == 0, result.output
    spec = load_tenant_spec(project, "prod.acme")
    assert spec == TenantSpec.model_validate({**FULL, "compatibility_date": "2026-02-01"})
    # Declared secrets wait for `secrets set`; plan reads the file and says so.
    plan = CliRunner().invoke(cli, ["plan", "--stack", "prod.acme"])
    assert plan.exit_code == 0, plan.output


@pytest.mark.parametrize("kind", ["yaml", "json", "stdin"])
def test_from_file_gives_the_same_tenant(project: Path, tmp_path: Path, kind: str) -> None:
    # PyYAML writes YAML 1.1, where a plain `0o17` is text; the file is read as the Pulumi CLI reads
    # it (YAML 1.2: the number 15), so the YAML variant leaves that one value out.
    tenant = FULL if kind != "yaml" else {**FULL, "config": {"greeting": "Hello", "ratio": 1e5}}
    text = json.dumps(tenant) if kind != "yaml" else yaml.safe_dump(tenant)
    source = tmp_path / f"acme.{kind}"
    source.write_text(text)
    result = add("--from-file", "-", stdin=text) if kind == "stdin" else add("--from-file", str(source))
    assert result.exit_code == 0, result.output
    assert load_tenant_spec(project, "prod.acme") == TenantSpec.model_validate(tenant)


def test_flags_replace_the_files_values(project: Path, tmp_path: Path) -> None:
    source = tmp_path / "acme.yaml"
    source.write_text(yaml.safe_dump(FULL))
    result = add("acme", "--from-file", str(source), "--route", "www.acme.example.com/*", "--cpu-ms", "70")
    assert result.exit_code == 0, result.output
    spec = load_tenant_spec(project, "prod.acme")
    assert spec.routes == ["www.acme.example.com/*"]  # the whole list
    assert spec.limits is not None and (spec.limits.cpu_ms, spec.limits.subrequests) == (70, 40)
    assert spec.crons == FULL["crons"]


def test_the_written_values_read_the_same_under_every_yaml(project: Path) -> None:
    # `1e5`, `0o17` are numbers to YAML 1.2 (the Pulumi CLI) and text to 1.1: written as JSON, quoted.
    assert add("acme", *FULL_FLAGS).exit_code == 0
    tenant = load_stack_file(project / "Pulumi.prod.acme.yaml").config["clawdbot:tenant"]
    assert tenant["config"] == FULL["config"] and tenant["compatibility_date"] == "2026-02-01"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--route", "shop.other.org/*"], "clawdbot:tenant.routes[0]"),
        (["--route", "nohost"], "clawdbot:tenant.routes"),
        (["--custom-domain", "x.other.org"], "clawdbot:tenant.custom_domains[0]"),
        (["--cron", "61 * * * *"], "clawdbot:tenant.crons"),
        (["--d1-location-hint", "mars"], "clawdbot:tenant.d1_location_hint"),
        (["--d1-read-replication", "sometimes"], "clawdbot:tenant.d1_read_replication"),
        (["--config-version", "0"], "clawdbot:tenant.config_version"),
        (["--secret-name", "lower"], "clawdbot:tenant.secret_names[0]"),
        (["--cpu-ms", "1"], "clawdbot:tenant.limits.cpu_ms"),
        (["--compatibility-date", "2999-01-01"], "clawdbot:tenant.compatibility_date"),
        (["--isolation", "lambda"], "clawdbot:tenant.isolation"),
        (["--egress", "http://x"], "clawdbot:tenant.egress[0]"),
    ],
)
def test_a_bad_value_names_the_field_and_writes_nothing(project: Path, args: list[str], field: str) -> None:
    result = add("acme", "--zone-id", ZONE, "--zone-name", "acme.example.com", *args)
    assert result.exit_code == 1, result.output
    (line,) = _errors(result)
    assert line.startswith(f"Error: stack prod.acme: {field}")
    assert _stack_files(project) == ["Pulumi.prod.yaml", "Pulumi.yaml"]


def test_the_zone_is_required_and_named(project: Path) -> None:
    result = add("acme")
    assert result.exit_code == 1 and _errors(result)[0].startswith("Error: stack prod.acme: clawdbot:tenant.zone")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("rotues: []\n", "clawdbot:tenant.rotues"),  # a typo is never ignored
        ("- acme\n", "must hold the tenant object"),
        ("id: acme\nid: beta\n", "acme.yaml:2"),  # duplicate key, with its line
        ("zone: !!python/object:os.system {}\n", "acme.yaml:1"),
        ("id: acme\nconfig_version: '3'\n", "clawdbot:tenant.config_version"),
        ("[1, 2", "acme.yaml"),
        ("id: ../../etc/evil\n", "clawdbot:tenant.id"),
    ],
)
def test_a_hostile_or_wrong_file_is_one_error_naming_the_place(
    project: Path, tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "acme.yaml"
    source.write_text(content)
    tenant = [] if "id:" in content else ["acme"]
    result = add(*tenant, "--zone-id", ZONE, "--zone-name", "acme.example.com", "--from-file", str(source))
    assert result.exit_code in (1, 2), result.output
    assert len(_errors(result)) == 1 and message in result.output and "Traceback" not in result.output
    assert _stack_files(project) == ["Pulumi.prod.yaml", "Pulumi.yaml"]


def test_a_missing_file_and_a_bad_config_json_are_usage_errors(project: Path, tmp_path: Path) -> None:
    missing = add("acme", "--from-file", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "--from-file" in missing.output
    for bad in ("{not json", "[1, 2]"):
        result = add("acme", "--zone-id", ZONE, "--zone-name", "acme.example.com", "--config", bad)
        assert result.exit_code == 2 and "--config" in result.output


def test_the_tenant_argument_and_the_files_id_must_agree(project: Path, tmp_path: Path) -> None:
    source = tmp_path / "acme.json"
    source.write_text(json.dumps(FULL))
    result = add("beta", "--from-file", str(source))
    assert result.exit_code == 2 and "'beta'" in result.output and "'acme'" in result.output
    assert add("--zone-id", ZONE, "--zone-name", "acme.example.com").exit_code == 2  # no tenant at all


def test_an_existing_tenant_is_never_overwritten(project: Path) -> None:
    assert add("acme", "--zone-id", ZONE, "--zone-name", "acme.example.com").exit_code == 0
    before = (project / "Pulumi.prod.acme.yaml").read_bytes()
    again = add("acme", *FULL_FLAGS)
    assert again.exit_code == 1 and "already registered" in again.output
    assert (project / "Pulumi.prod.acme.yaml").read_bytes() == before


def test_the_next_step_it_prints_sets_the_declared_secrets_before_up(project: Path) -> None:
    # `up` refuses a stack while a declared secret has no value: "deploy with up" alone sent people there.
    with_secrets = add("initech", "--zone-id", ZONE, "--zone-name", "initech.example.com", "--secret-name", "HOOK")
    assert with_secrets.exit_code == 0, with_secrets.output
    assert (
        "registered initech: Pulumi.prod.initech.yaml; set its secrets (`python -m orchestrator secrets set "
        "initech HOOK`), then deploy with `python -m orchestrator up --tenant initech`"
    ) in " ".join(with_secrets.output.split())
    plain = add("hooli", "--zone-id", "1" * 32, "--zone-name", "hooli.example.com")
    assert plain.exit_code == 0, plain.output
    assert "set its secrets" not in plain.output
    assert "; deploy with `python -m orchestrator up --tenant hooli`" in plain.output
