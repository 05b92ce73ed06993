"""`secrets list|unset|import` and `audit`: names never values, all-or-nothing imports, every change audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from secrets_project import salt_for, secrets_project

from orchestrator.cli.audit import audit
from orchestrator.cli.secrets import secrets
from orchestrator.config.secret_bulk import parse_secrets
from orchestrator.config.secrets_provider import PassphraseCrypter
from orchestrator.core.errors import ConfigError

PASSPHRASE = "state passphrase for bulk tests"
SECRET_A = "sk_live_alpha-not-real"
SECRET_B = "whsec_beta-not-real"
VALUES = (SECRET_A, SECRET_B, PASSPHRASE)


@pytest.fixture(scope="module")
def salt() -> str:
    return salt_for(PASSPHRASE)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, salt: str) -> Path:
    doc = {
        "encryptionsalt": salt,
        "config": {
            "clawdbot:tenant": {"id": "acme", "secret_names": ["STRIPE_KEY", "WEBHOOK_SECRET"]},
            "clawdbot:secrets": {},
        },
    }
    return secrets_project(tmp_path, monkeypatch, PASSPHRASE, {"acme": yaml.safe_dump(doc, sort_keys=False)})


def run(*args: str, stdin: str | None = None, command: object = secrets) -> Result:
    result = CliRunner().invoke(command, list(args), input=stdin, catch_exceptions=False)  # type: ignore[arg-type]
    for value in VALUES:
        assert value not in result.output
    return result


def _stack(project: Path) -> str:
    return (project / "Pulumi.prod.acme.yaml").read_text()


def _decrypted(project: Path) -> dict[str, str]:
    doc = yaml.safe_load(_stack(project))
    crypter = PassphraseCrypter(PASSPHRASE, doc["encryptionsalt"])
    return {k: crypter.decrypt(v["secure"]) for k, v in doc["config"]["clawdbot:secrets"].items()}


def _audit_log(project: Path) -> str:
    return (project.parent / "audit.jsonl").read_text()


def test_import_json_then_list_shows_names_and_never_values(project: Path) -> None:
    payload = json.dumps({"STRIPE_KEY": SECRET_A, "WEBHOOK_SECRET": SECRET_B})
    result = run("import", "acme", stdin=payload)
    assert result.exit_code == 0, result.output
    assert _decrypted(project) == {"STRIPE_KEY": SECRET_A, "WEBHOOK_SECRET": SECRET_B}
    listed = run("list", "acme", "--json")
    assert json.loads(listed.output) == {
        "stack": "prod.acme",
        "secrets": [
            {"name": "STRIPE_KEY", "declared": True, "set": True},
            {"name": "WEBHOOK_SECRET", "declared": True, "set": True},
        ],
    }


def test_list_says_what_is_missing(project: Path) -> None:
    run("import", "acme", stdin=f"STRIPE_KEY={SECRET_A}\n")
    out = run("list", "acme").output
    assert "STRIPE_KEY" in out and "missing: WEBHOOK_SECRET" in out


def test_import_dotenv_quotes_export_comments(project: Path) -> None:
    text = f"# from doppler --format env\nexport STRIPE_KEY=\"{SECRET_A}\\n2\"\nWEBHOOK_SECRET='{SECRET_B} #x' # note\n"
    assert run("import", "acme", stdin=text).exit_code == 0
    assert _decrypted(project) == {"STRIPE_KEY": SECRET_A + "\n2", "WEBHOOK_SECRET": SECRET_B + " #x"}


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (json.dumps({"STRIPE_KEY": SECRET_A, "OTHER": SECRET_B}), "not declared: OTHER"),
        (json.dumps({"STRIPE_KEY": SECRET_A, "WEBHOOK_SECRET": ""}), "empty values for: WEBHOOK_SECRET"),
        (
            json.dumps({"STRIPE_KEY": SECRET_A, "WEBHOOK_SECRET": 5}),
            "'WEBHOOK_SECRET': a secret value must be a string",
        ),
        ('{"STRIPE_KEY": "' + SECRET_A + '", "STRIPE_KEY": "x"}', "'STRIPE_KEY' appears twice"),
        ('{"STRIPE_KEY": "' + SECRET_A + '"', "input JSON: line 1"),
        ("[1]", "not NAME=value"),
        (f'STRIPE_KEY={SECRET_A}\nWEBHOOK_SECRET="{SECRET_B}\n', "input line 2: unterminated"),
        (f"STRIPE_KEY={SECRET_A}\n{SECRET_B}\n", "input line 2: not NAME=value"),
        (f"STRIPE_KEY={SECRET_A}\nSTRIPE_KEY=again\n", "input line 2: STRIPE_KEY appears twice"),
        (json.dumps({"stripe-key": SECRET_A}), "not UPPER_SNAKE_CASE secret names"),
        ("", "no secrets in the input"),
        ("# only a comment\n", "no secrets in the input"),
    ],
)
def test_bad_input_changes_nothing_and_never_echoes(project: Path, stdin: str, message: str) -> None:
    before = _stack(project)
    result = run("import", "acme", stdin=stdin)
    assert result.exit_code == 1 and message in result.output, result.output
    assert _stack(project) == before
    assert not (project.parent / "audit.jsonl").exists()


def test_wrong_passphrase_imports_nothing(project: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("another passphrase\n")
    wrong.chmod(0o600)
    before = _stack(project)
    result = CliRunner(env={"CLAWDBOT_PASSPHRASE_FILE": str(wrong)}).invoke(
        secrets, ["import", "acme", "--add"], input=json.dumps({"NEW_ONE": SECRET_A})
    )
    assert result.exit_code == 1 and "secrets adopt acme" in result.output
    assert _stack(project) == before  # not even secret_names changed


def test_add_declares_and_only_declared_skips(project: Path) -> None:
    payload = json.dumps({"STRIPE_KEY": SECRET_A, "DOPPLER_PROJECT": "p", "NEW_KEY": SECRET_B})
    out = run("import", "acme", "--only-declared", stdin=payload).output
    assert "skipped (not declared): DOPPLER_PROJECT, NEW_KEY" in out
    assert _decrypted(project) == {"STRIPE_KEY": SECRET_A}
    assert run("import", "acme", "--add", stdin=json.dumps({"NEW_KEY": SECRET_B})).exit_code == 0
    names = yaml.safe_load(_stack(project))["config"]["clawdbot:tenant"]["secret_names"]
    assert names == ["STRIPE_KEY", "WEBHOOK_SECRET", "NEW_KEY"]
    assert run("import", "acme", "--add", "--only-declared", stdin="{}").exit_code == 2


def test_unset_removes_the_value_keeps_the_declaration(project: Path) -> None:
    run("import", "acme", stdin=json.dumps({"STRIPE_KEY": SECRET_A, "WEBHOOK_SECRET": SECRET_B}))
    result = run("unset", "acme", "STRIPE_KEY")
    assert result.exit_code == 0, result.output
    assert _decrypted(project) == {"WEBHOOK_SECRET": SECRET_B}
    again = run("unset", "acme", "STRIPE_KEY")
    assert again.exit_code == 1 and "not set; nothing to unset" in again.output
    assert run("unset", "acme", "bad-name").exit_code == 1


@pytest.mark.parametrize("args", [["list", "nope"], ["unset", "nope", "STRIPE_KEY"], ["import", "nope"]])
def test_unknown_tenant_is_a_usage_error(project: Path, args: list[str]) -> None:
    result = run(*args, stdin="{}")
    assert result.exit_code == 2 and "unknown tenant 'nope'" in result.output


def test_every_change_is_audited_by_name_only(project: Path) -> None:
    run("import", "acme", stdin=json.dumps({"STRIPE_KEY": SECRET_A, "WEBHOOK_SECRET": SECRET_B}))
    run("set", "acme", "STRIPE_KEY", stdin=SECRET_B)
    run("unset", "acme", "WEBHOOK_SECRET")
    run("rotate", "acme")
    log = _audit_log(project)
    for value in VALUES:
        assert value not in log
    shown = json.loads(run("--tenant", "acme", "--json", command=audit).output)
    ops = [(e["operation"], e["detail"]) for e in shown["events"]]
    assert ops == [
        ("secret-import", "names: STRIPE_KEY, WEBHOOK_SECRET"),
        ("secret-set", "names: STRIPE_KEY"),
        ("secret-unset", "names: WEBHOOK_SECRET"),
        ("rotate", "relay_key_generation -> 2"),
    ]
    assert all(e["tenant"] == "acme" and e["stack"] == "prod.acme" for e in shown["events"])
    assert json.loads(run("--tenant", "globex", "--json", command=audit).output)["events"] == []
    table = run("--tenant", "acme", command=audit).output.splitlines()
    assert len(table) == 4 and "secret-unset" in table[2]


def test_audit_with_no_log_and_a_corrupt_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("CLAWDBOT_AUDIT_LOG", str(log))
    assert "no matching events" in run(command=audit).output
    log.write_text("{not json\n")
    result = run(command=audit)
    assert result.exit_code == 1 and "line 1 is not JSON" in result.output


def test_parse_secrets_class_of_inputs() -> None:
    assert parse_secrets('  {"A": "1"}') == {"A": "1"}
    assert parse_secrets("A=1\n\nB = two words \nC=x # c\n") == {"A": "1", "B": "two words", "C": "x"}
    with pytest.raises(ConfigError) as caught:
        parse_secrets(f"A={SECRET_A}\nnot a line {SECRET_B}\n")
    assert SECRET_B not in str(caught.value) and SECRET_A not in str(caught.value)


def test_readme_documents_the_manager_pipe() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "doppler secrets download --no-file --format json | clawdbot-edge secrets import acme" in readme


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("set", "acme", "STRIPE_KEY"), SECRET_A),
        (("import", "acme"), f"STRIPE_KEY={SECRET_A}\n"),
        (("list", "acme"), None),
    ],
)
@pytest.mark.parametrize("names", ["STRIPE_KEY", {"STRIPE_KEY": True}, ["STRIPE_KEY", 7]])
def test_every_secrets_command_reads_secret_names_one_way(
    project: Path, args: tuple[str, ...], stdin: str | None, names: object
) -> None:
    path = project / "Pulumi.prod.acme.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["clawdbot:tenant"]["secret_names"] = names
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    before = path.read_bytes()
    result = run(*args, stdin=stdin)
    assert result.exit_code == 1
    assert "Error: stack prod.acme: clawdbot:tenant.secret_names: must be a list of names" in result.output
    assert path.read_bytes() == before
