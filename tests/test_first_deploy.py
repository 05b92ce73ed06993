"""A fresh clone with a new passphrase: the example stacks, `secrets set`, `secrets adopt` (issue 11, item 1).

Upstream facts the design rests on (pulumi/pulumi at 1b5949891b; details in /work/notes/upstream-11.md):
- pkg/secrets/passphrase/manager.go `NewPromptingPassphraseSecretsManager` (lines 300-328): "If we have a
  salt, we can just use it" -- `pulumi stack init` reuses an existing `encryptionsalt`, and a passphrase
  that does not open it is "incorrect passphrase"; with no salt it makes a new one from the passphrase
  (read from PULUMI_CONFIG_PASSPHRASE(_FILE)) and saves the stack file.
- pkg/cmd/pulumi/stack/secrets.go `createSecretsManagerForNewStack` reads an existing stack file first.
So a stack file shipped with a salt nobody has the passphrase of is unusable; one without a salt (and
without `secure:` values, which would stay undecryptable) works for whoever comes first.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.config.atomic_file import make_private_dirs
from orchestrator.config.secret_entry import adopt_stack_file
from orchestrator.config.secrets_provider import PassphraseCrypter, new_encryption_salt
from orchestrator.config.stack_file import load_stack_file, read_config, remove_secrets, set_secrets
from orchestrator.config.tenant_config import tenant_stacks, unset_secrets
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import ConfigError

MINE = "my new passphrase 1d4e"
LOST = "a passphrase nobody kept"
OTHER = "another stack's passphrase"


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for path in REPO_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(path, project / path.name)
    return project


def _passphrase_file(tmp_path: Path, passphrase: str = MINE) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(passphrase + "\n")
    path.chmod(0o600)
    return path


def _invoke(project: Path, passphrase_file: Path, args: list[str], value: str | None = None) -> Result:
    env = {"CLAWDBOT_PROJECT_DIR": str(project), "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file)}
    return CliRunner().invoke(cli, args, env=env, input=value)


def test_example_stacks_ship_without_salt_or_secret_values() -> None:
    for stack in ["prod", *tenant_stacks(REPO_ROOT)]:
        file = load_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml")
        assert file.encryption_salt is None, stack
        assert file.secret_key_paths() == [], stack
        assert "encryptionsalt" not in file.document
    assert unset_secrets(REPO_ROOT, "prod.acme") == ["WEBHOOK_SECRET", "STRIPE_KEY"]


def test_secrets_set_just_works_on_a_fresh_clone_with_a_new_passphrase(tmp_path: Path) -> None:
    project, passphrase = _project(tmp_path), _passphrase_file(tmp_path)
    first = _invoke(project, passphrase, ["secrets", "set", "acme", "WEBHOOK_SECRET"], "whsec-value\n")
    assert first.exit_code == 0, first.output
    salt = load_stack_file(project / "Pulumi.prod.acme.yaml").encryption_salt
    assert salt is not None
    PassphraseCrypter(MINE, salt)  # the salt opens with the new passphrase
    second = _invoke(project, passphrase, ["secrets", "set", "acme", "STRIPE_KEY"], "sk-value")
    assert second.exit_code == 0, second.output
    stack = load_stack_file(project / "Pulumi.prod.acme.yaml")
    assert stack.encryption_salt == salt, "the second secret reuses the salt"
    config = read_config(project / "Pulumi.prod.acme.yaml", MINE)
    assert config["clawdbot:secrets"] == {"WEBHOOK_SECRET": "whsec-value", "STRIPE_KEY": "sk-value"}
    assert unset_secrets(project, "prod.acme") == []
    assert "whsec-value" not in first.output + second.output


def test_plan_of_a_fresh_clone_works_and_names_what_is_not_set(tmp_path: Path) -> None:
    project, passphrase = _project(tmp_path), _passphrase_file(tmp_path)
    result = _invoke(project, passphrase, ["plan", "--stack", "prod.acme"])
    assert result.exit_code == 0, result.output
    assert "Not set yet (`up` refuses the stack until they are): WEBHOOK_SECRET, STRIPE_KEY" in result.output
    assert "python -m orchestrator secrets set acme STRIPE_KEY" in result.output
    document = json.loads(_invoke(project, passphrase, ["plan", "--stack", "prod.acme", "--json"]).output)
    assert document["unset_secrets"] == ["WEBHOOK_SECRET", "STRIPE_KEY"]


def _lost_salt_file(project: Path) -> tuple[Path, str]:
    """acme's stack file as an old checkout had it: salt and values under a passphrase nobody kept."""
    path = project / "Pulumi.prod.acme.yaml"
    set_secrets(path, {"clawdbot:secrets.WEBHOOK_SECRET": "w", "clawdbot:secrets.STRIPE_KEY": "s"}, LOST)
    set_secrets(path, {"cloudflare:apiToken": "t", "clawdbot:extra.tokens[0]": "n0"}, LOST)
    stored = load_stack_file(path).encryption_salt
    assert stored is not None
    return path, stored


def test_without_adopt_the_lost_salt_blocks_secrets_set_and_says_what_to_do(tmp_path: Path) -> None:
    project, passphrase = _project(tmp_path), _passphrase_file(tmp_path)
    path, _ = _lost_salt_file(project)
    before = path.read_bytes()
    result = _invoke(project, passphrase, ["secrets", "set", "acme", "WEBHOOK_SECRET"], "x")
    assert result.exit_code == 1
    assert "incorrect passphrase" in result.output and "python -m orchestrator secrets adopt acme" in result.output
    assert path.read_bytes() == before


def test_adopt_drops_the_salt_and_every_value_and_says_which_to_set_again(tmp_path: Path) -> None:
    project, passphrase = _project(tmp_path), _passphrase_file(tmp_path)
    path, _ = _lost_salt_file(project)
    dry = _invoke(project, passphrase, ["secrets", "adopt", "acme", "--dry-run"])
    assert dry.exit_code == 0 and "would drop the encryptionsalt" in dry.output
    assert load_stack_file(path).encryption_salt is not None, "a dry run changes nothing"

    result = _invoke(project, passphrase, ["secrets", "adopt", "acme"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("stack prod.acme: dropped the encryptionsalt (it does not open with the passphrase")
    assert "4 secret(s) that do not decrypt" in lines[0]
    assert "  set again: python -m orchestrator secrets set acme WEBHOOK_SECRET" in lines
    assert "  set again: python -m orchestrator secrets set acme STRIPE_KEY" in lines
    assert "  set again: pulumi config set --secret --path 'cloudflare:apiToken' --stack prod.acme" in lines
    assert "  set again: pulumi config set --secret --path 'clawdbot:extra.tokens[0]' --stack prod.acme" in lines
    adopted = load_stack_file(path)
    assert adopted.encryption_salt is None and adopted.secret_key_paths() == []
    assert adopted.get("clawdbot:tenant.id") == "acme", "everything else is kept"

    again = _invoke(project, passphrase, ["secrets", "set", "acme", "WEBHOOK_SECRET"], "fresh")
    assert again.exit_code == 0, again.output
    assert read_config(path, MINE)["clawdbot:secrets"] == {"WEBHOOK_SECRET": "fresh"}
    settled = _invoke(project, passphrase, ["secrets", "adopt", "acme"])
    assert "stack prod.acme: nothing to adopt (1 secret(s) open with the passphrase file)" in settled.output


def test_adopt_with_the_right_passphrase_drops_only_values_from_elsewhere(tmp_path: Path) -> None:
    project = _project(tmp_path)
    path = project / "Pulumi.prod.acme.yaml"
    set_secrets(path, {"clawdbot:secrets.WEBHOOK_SECRET": "mine"}, MINE)
    foreign = PassphraseCrypter(OTHER, new_encryption_salt(OTHER)).encrypt("theirs")
    text = path.read_text().replace(
        "clawdbot:secrets:\n", f"clawdbot:secrets:\n    STRIPE_KEY:\n      secure: {foreign}\n"
    )
    path.write_text(text)
    adoption = adopt_stack_file(path, MINE)
    assert (adoption.salt_dropped, adoption.dropped, adoption.kept) == (False, ("clawdbot:secrets.STRIPE_KEY",), 1)
    assert read_config(path, MINE)["clawdbot:secrets"] == {"WEBHOOK_SECRET": "mine"}


def test_adopt_leaves_an_openable_file_byte_for_byte_and_json_says_so(tmp_path: Path) -> None:
    project, passphrase = _project(tmp_path), _passphrase_file(tmp_path)
    set_secrets(project / "Pulumi.prod.globex.yaml", {"clawdbot:secrets.WEBHOOK_SECRET": "g"}, MINE)
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    result = _invoke(project, passphrase, ["secrets", "adopt", "--all", "--json"])
    assert result.exit_code == 0, result.output
    stacks = {s["stack"]: s for s in json.loads(result.output)["stacks"]}
    assert stacks["prod.globex"] == {
        "stack": "prod.globex",
        "changed": False,
        "salt_dropped": False,
        "dropped": [],
        "kept": 1,
        "set_again": [],
        "deployed": False,
    }
    assert not stacks["prod.acme"]["changed"]
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before


@pytest.mark.parametrize(
    "body",
    [
        "encryptionsalt: not-a-salt\nconfig:\n  clawdbot:secrets:\n    K:\n      secure: v1:AAAA:BBBB\n",
        "encryptionsalt: v1:Zm9v\nconfig: {}\n",
        "config:\n  clawdbot:secrets:\n    K:\n      secure: v1:AAAA:BBBB\n",  # values without any salt
    ],
)
def test_adopt_treats_a_malformed_salt_or_orphan_values_as_undecryptable(tmp_path: Path, body: str) -> None:
    path = tmp_path / "Pulumi.prod.acme.yaml"
    path.write_text(body)
    adoption = adopt_stack_file(path, MINE)
    assert adoption.changed
    stack = load_stack_file(path)
    assert stack.encryption_salt is None and stack.secret_key_paths() == []


def test_adopt_refuses_a_stack_of_another_secrets_provider(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.prod.acme.yaml"
    path.write_text("secretsprovider: awskms://alias/x\nencryptedkey: abc\nconfig: {}\n")
    with pytest.raises(ConfigError, match="is not the passphrase provider"):
        adopt_stack_file(path, MINE)


def test_a_value_written_while_adopting_is_never_dropped(tmp_path: Path) -> None:
    project = _project(tmp_path)
    path, salt = _lost_salt_file(project)
    stale = {"clawdbot:secrets.WEBHOOK_SECRET": "v1:not:what-is-there"}
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"clawdbot:secrets\.WEBHOOK_SECRET: changed while it was being adopted"):
        remove_secrets(path, stale, None)
    with pytest.raises(ConfigError, match="encryptionsalt changed while it was being adopted"):
        remove_secrets(path, {}, "v1:other")
    assert path.read_bytes() == before and salt


def test_adopt_names_unknown_tenants_before_writing_anything(tmp_path: Path) -> None:
    project, passphrase = _project(tmp_path), _passphrase_file(tmp_path)
    path, _ = _lost_salt_file(project)
    before = path.read_bytes()
    result = _invoke(project, passphrase, ["secrets", "adopt", "acme", "ghost"])
    assert result.exit_code == 2 and "unknown tenant 'ghost'" in result.output  # a usage error, as everywhere
    assert path.read_bytes() == before


def test_private_dirs_are_0700_all_the_way_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    target = home / ".clawdbot" / "state"
    make_private_dirs(target)
    for directory in (home / ".clawdbot", target):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    home.chmod(0o755)
    make_private_dirs(home / "other")
    assert stat.S_IMODE(home.stat().st_mode) == 0o755, "an existing parent is left alone"
    make_private_dirs(target)  # idempotent
