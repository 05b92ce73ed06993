"""`secrets set|rotate`: values from stdin only, secure values Pulumi can read, atomic bumps."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from secrets_project import salt_for, secrets_project

from orchestrator.cli.secrets import secrets
from orchestrator.config.secret_entry import rotate_relay_keys
from orchestrator.config.secrets_provider import PassphraseCrypter

PASSPHRASE = "state passphrase for tests"
VALUE = "sk_live_not-a-real-key"


def _tenant_yaml(tenant: str, salt: str, generation: object = 1) -> str:
    return yaml.safe_dump(
        {
            "encryptionsalt": salt,
            "config": {
                "clawdbot:tenant": {
                    "id": tenant,
                    "secret_names": ["WEBHOOK_SECRET"],
                    "relay_key_generation": generation,
                },
                "clawdbot:secrets": {},
            },
        },
        sort_keys=False,
    )


@pytest.fixture(scope="module")
def salt() -> str:
    # One salt for the module: PBKDF2 (1M rounds) then runs once, cached by orchestrator.config.secrets_provider.
    return salt_for(PASSPHRASE)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, salt: str) -> Path:
    tenants = {tenant: _tenant_yaml(tenant, salt) for tenant in ("acme", "globex")}
    return secrets_project(tmp_path, monkeypatch, PASSPHRASE, tenants)


def run(*args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(secrets, list(args), input=stdin, catch_exceptions=False)
    assert VALUE not in result.output
    assert PASSPHRASE not in result.output
    return result


def _doc(project: Path, tenant: str = "acme") -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((project / f"Pulumi.prod.{tenant}.yaml").read_text())
    return loaded


def _config(project: Path, tenant: str = "acme") -> dict[str, dict[str, object]]:
    config = _doc(project, tenant)["config"]
    assert isinstance(config, dict)
    return config


def test_set_from_stdin_writes_a_secure_value(project: Path) -> None:
    result = run("set", "acme", "WEBHOOK_SECRET", stdin=VALUE + "\n")
    assert result.exit_code == 0, result.output
    assert "set WEBHOOK_SECRET in Pulumi.prod.acme.yaml (encrypted)" in result.output
    text = (project / "Pulumi.prod.acme.yaml").read_text()
    assert VALUE not in text
    secure = _config(project)["clawdbot:secrets"]["WEBHOOK_SECRET"]
    assert isinstance(secure, dict)
    salt = _doc(project)["encryptionsalt"]
    assert isinstance(salt, str)
    assert PassphraseCrypter(PASSPHRASE, salt).decrypt(secure["secure"]) == VALUE


def test_undeclared_name_is_refused_unless_added(project: Path) -> None:
    before = (project / "Pulumi.prod.acme.yaml").read_bytes()
    refused = run("set", "acme", "STRIPE_KEY", stdin=VALUE)
    assert refused.exit_code == 1
    assert (
        "Error: stack prod.acme: clawdbot:tenant.secret_names: STRIPE_KEY is not declared; pass --add" in refused.output
    )
    assert (project / "Pulumi.prod.acme.yaml").read_bytes() == before

    added = run("set", "acme", "STRIPE_KEY", "--add", stdin=VALUE)
    assert added.exit_code == 0, added.output
    assert "added STRIPE_KEY to secret_names of stack prod.acme" in added.output
    assert _config(project)["clawdbot:tenant"]["secret_names"] == ["WEBHOOK_SECRET", "STRIPE_KEY"]
    assert set(_config(project)["clawdbot:secrets"]) == {"STRIPE_KEY"}


def test_wrong_passphrase_changes_nothing(project: Path, tmp_path: Path) -> None:
    (tmp_path / "passphrase").write_text("not it\n")
    before = (project / "Pulumi.prod.acme.yaml").read_bytes()
    result = run("set", "acme", "STRIPE_KEY", "--add", stdin=VALUE)
    assert result.exit_code == 1
    assert "incorrect passphrase" in result.output and "Pulumi.prod.acme.yaml" in result.output
    assert (project / "Pulumi.prod.acme.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "stdin", "message", "code"),
    [
        (
            ["set", "acme", "stripe_key"],
            VALUE,
            "stack prod.acme: clawdbot:secrets.stripe_key: secret names are UPPER_SNAKE_CASE",
            1,
        ),
        # A tenant that is not there is a usage error (exit 2), as everywhere (test_cli_exit_codes.py).
        (["set", "initech", "WEBHOOK_SECRET"], VALUE, "unknown tenant 'initech': no stack file Pulumi.prod.initech", 2),
        (["set", "../etc", "WEBHOOK_SECRET"], VALUE, "'../etc' is not a tenant id", 2),
        (
            ["set", "acme", "WEBHOOK_SECRET"],
            "",
            "stack prod.acme: clawdbot:secrets.WEBHOOK_SECRET: refusing an empty value",
            1,
        ),
        (["rotate", "initech"], None, "unknown tenant 'initech'", 2),
    ],
)
def test_errors_name_what_is_wrong(project: Path, args: list[str], stdin: str | None, message: str, code: int) -> None:
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    result = run(*args, stdin=stdin)
    assert result.exit_code == code
    assert f"Error: {message}" in result.output
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before


def test_wide_passphrase_file_is_refused(project: Path, tmp_path: Path) -> None:
    (tmp_path / "passphrase").chmod(0o640)
    result = run("set", "acme", "WEBHOOK_SECRET", stdin=VALUE)
    assert result.exit_code == 1
    assert "has mode 0640; it must be 0600" in result.output


def test_value_is_never_an_argument(project: Path) -> None:
    result = run("set", "acme", "WEBHOOK_SECRET", VALUE)
    assert result.exit_code == 2
    assert "secret values are never taken as arguments" in result.output


def test_rotate_one_tenant(project: Path) -> None:
    run("set", "acme", "WEBHOOK_SECRET", stdin=VALUE)
    secret_before = _config(project)["clawdbot:secrets"]
    result = run("rotate", "acme")
    assert result.exit_code == 0, result.output
    assert "stack prod.acme: relay_key_generation 1 -> 2" in result.output
    assert "now run `up`" in result.output
    assert _config(project)["clawdbot:tenant"]["relay_key_generation"] == 2
    assert _config(project)["clawdbot:secrets"] == secret_before
    assert _config(project, "globex")["clawdbot:tenant"]["relay_key_generation"] == 1


def test_rotate_all(project: Path) -> None:
    result = run("rotate", "--all")
    assert result.exit_code == 0, result.output
    assert result.output.count("relay_key_generation 1 -> 2") == 2
    for tenant in ("acme", "globex"):
        assert _config(project, tenant)["clawdbot:tenant"]["relay_key_generation"] == 2


@pytest.mark.parametrize("args", [["rotate"], ["rotate", "acme", "--all"]])
def test_rotate_needs_tenants_or_all(project: Path, args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert "name one or more tenants, or pass --all" in result.output


def test_rotate_checks_every_file_before_writing_any(project: Path) -> None:
    salt = _doc(project)["encryptionsalt"]
    assert isinstance(salt, str)
    (project / "Pulumi.prod.globex.yaml").write_text(_tenant_yaml("globex", salt, generation="two"))
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    result = run("rotate", "--all")
    assert result.exit_code == 1
    assert "stack prod.globex: clawdbot:tenant.relay_key_generation: must be a positive integer" in result.output
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before


def test_rotate_with_no_tenants(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no tenant stacks to rotate"):
        rotate_relay_keys(tmp_path, [])


def test_help_explains() -> None:
    text = " ".join(CliRunner().invoke(secrets, ["set", "--help"]).output.split())
    assert "never accepted as an argument" in text
    text = " ".join(CliRunner().invoke(secrets, ["rotate", "--help"]).output.split())
    assert "re-encrypts every secret envelope" in text
