"""Stack files keep what a person wrote: `secrets set`/`rotate` change only the lines they must."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.secrets import secrets
from orchestrator.config import stack_file as sf
from orchestrator.config.secrets_provider import PassphraseCrypter
from orchestrator.core.errors import ConfigError

# Pulumi's own test vector (passphrase "password"): one PBKDF2 derivation for the module, cached.
PASSPHRASE = "password"
SALT = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="
VALUE = "whsec_new_value_for_the_roundtrip_test"


def commented(crypter: PassphraseCrypter, *, salt: bool = True) -> str:
    """A tenant stack as a person keeps it: comments everywhere, flow and block styles, all quotes."""
    head = f"encryptionsalt: {SALT}   # written by secrets set\n" if salt else ""
    return f"""# Tenant acme: owned by the shop team (#shop-edge).
# Do not edit the secure: values by hand.
{head}config:
  # --- what the edge serves ---
  clawdbot:tenant:
    id: 'acme'                      # single-quoted on purpose
    zone: {{id: "3f1c9d2e8b7a6c5d4e3f2a1b0c9d8e7f", name: acme.example.com}}
    routes: ["shop.acme.example.com/*", 'api.acme.example.com/v1/*']
    custom_domains:
      - edge.acme.example.com       # block sequence, indented
    crons:
      - "*/15 * * * *"
    compatibility_date: "2026-03-15"
    config_version: 3
    config:
      greeting: >-
        Hello from
        Acme
      terms: |
        line one
        line two
      on: yes                       # YAML 1.1 would make these booleans
      launch: 2024-09-23            # and this a date
      mode: 0o17
      features: &features {{wishlist: true, reviews: false}}
      beta_features: *features
      empty: null
    secret_names: [WEBHOOK_SECRET]
    relay_key_generation: 1
  clawdbot:secrets:
    WEBHOOK_SECRET:
      secure: {crypter.encrypt("old")}   # rotated 2026-11
# end of file
"""


@pytest.fixture(scope="module")
def crypter() -> PassphraseCrypter:
    return PassphraseCrypter(PASSPHRASE, SALT, source="fixture")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    passphrase.chmod(0o600)
    monkeypatch.setenv("CLAWDBOT_PROJECT_DIR", str(project))
    monkeypatch.setenv("CLAWDBOT_PASSPHRASE_FILE", str(passphrase))
    return project


def _changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def _secrets(*args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(secrets, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert VALUE not in result.output
    return result.output


def test_secrets_set_changes_only_the_value_line(project: Path, crypter: PassphraseCrypter) -> None:
    path = project / "Pulumi.prod.acme.yaml"
    before = commented(crypter)
    path.write_text(before)
    _secrets("set", "acme", "WEBHOOK_SECRET", stdin=VALUE)
    after = path.read_text()
    changed = _changed_lines(before, after)
    assert len(changed) == 2, changed
    assert changed[0].startswith("-      secure: v1:") and changed[0].endswith(" # rotated 2026-11")
    assert changed[1].startswith("+      secure: v1:") and changed[1].endswith(" # rotated 2026-11")
    assert VALUE not in after
    assert sf.read_config(path, PASSPHRASE)["clawdbot:secrets"] == {"WEBHOOK_SECRET": VALUE}


def test_secrets_set_add_touches_the_names_line_and_appends(project: Path, crypter: PassphraseCrypter) -> None:
    path = project / "Pulumi.prod.acme.yaml"
    before = commented(crypter)
    path.write_text(before)
    _secrets("set", "acme", "STRIPE_KEY", "--add", stdin=VALUE)
    changed = _changed_lines(before, path.read_text())
    assert changed[:2] == ["-    secret_names: [WEBHOOK_SECRET]", "+    secret_names: [WEBHOOK_SECRET, STRIPE_KEY]"]
    assert changed[2:4] == ["+    STRIPE_KEY:", changed[3]] and changed[3].startswith("+      secure: v1:")
    assert len(changed) == 4, changed


def test_rotate_changes_only_the_generation_line(project: Path, crypter: PassphraseCrypter) -> None:
    path = project / "Pulumi.prod.acme.yaml"
    before = commented(crypter)
    path.write_text(before)
    _secrets("rotate", "acme")
    assert _changed_lines(before, path.read_text()) == ["-    relay_key_generation: 1", "+    relay_key_generation: 2"]


def test_first_secret_puts_the_salt_first_and_keeps_the_header(project: Path, crypter: PassphraseCrypter) -> None:
    path = project / "Pulumi.prod.acme.yaml"
    before = commented(crypter, salt=False)
    path.write_text(before)
    sf.set_secret(path, "clawdbot:secrets.WEBHOOK_SECRET", VALUE, PASSPHRASE)
    after = path.read_text()
    assert after.startswith("# Tenant acme: owned by the shop team (#shop-edge).\n# Do not edit the secure: values")
    assert list(sf.load_stack_file(path).document) == ["encryptionsalt", "config"]
    changed = _changed_lines(before, after)
    assert [line[:17] for line in changed] == ["+encryptionsalt: ", "-      secure: v1", "+      secure: v1"]


def test_the_yaml_12_scalars_survive_a_rewrite(tmp_path: Path, crypter: PassphraseCrypter) -> None:
    path = tmp_path / "Pulumi.prod.acme.yaml"
    path.write_text(commented(crypter))
    sf.set_value(path, "clawdbot:tenant.config_version", 4)
    config = sf.load_stack_file(path).config["clawdbot:tenant"]["config"]
    assert (config["on"], config["launch"], config["mode"], config["empty"]) == ("yes", "2024-09-23", 15, None)
    assert config["beta_features"] == config["features"]
    assert "beta_features: *features" in path.read_text()


def test_new_text_that_would_read_back_otherwise_is_quoted(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.prod.acme.yaml"
    path.write_text("config: {}\n")
    tricky = ["012", "1_000", "0b1", "+0x1F", "08", "null", "~", "", "true", "1e3", ".inf", "on", "2024-09-23"]
    sf.set_value(path, "clawdbot:strings", tricky)
    assert sf.load_stack_file(path).config["clawdbot:strings"] == tricky


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("config:\n  a:b: 1\n  a:b: 2\n", ":3: a:b: duplicate key"),
        ("config:\n  a:b: ! 12\n", "reads differently to the round-trip editor; refusing to rewrite it"),
        ("config:\n  a:b: [" + "[" * 100 + "\n", "nested deeper than 64"),
        ("config:\n  a:b: !!python/object:os.system {}\n", "is not allowed in a stack file"),
    ],
)
def test_files_the_editor_cannot_keep_are_refused_unchanged(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "Pulumi.prod.acme.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as caught:
        sf.set_value(path, "clawdbot:x", 1)
    assert str(caught.value).startswith(str(path))
    assert path.read_text() == body
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.prod.acme.yaml"]
