"""The engine's VPS checks, work-dir sync and error mapping, without a stand-in CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core.errors import (
    PulumiCliMissingError,
    SetupError,
    StackError,
)
from orchestrator.engine.setup import check_passphrase_file, install_hint, pinned_cli_version, pulumi_command
from orchestrator.engine.workdirs import sync_stack_file
from orchestrator.fleet.ports import Operation

PASSPHRASE = "correct horse battery staple"


def test_sync_keeps_a_salt_written_by_stack_init(tmp_path: Path) -> None:
    source, target = tmp_path / "src.yaml", tmp_path / "work" / "dst.yaml"
    source.write_text("config:\n  clawdbot:tenant: {id: acme}\n")
    target.parent.mkdir()
    target.write_text("encryptionsalt: v1:new-salt\nconfig: {}\n")
    sync_stack_file(source, target, "prod.acme")
    assert target.read_text() == "encryptionsalt: v1:new-salt\nconfig:\n  clawdbot:tenant: {id: acme}\n"


def test_passphrase_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE)
    path.chmod(0o640)
    with pytest.raises(SetupError, match=r"mode 0640.*chmod 600") as info:
        check_passphrase_file(path)
    assert PASSPHRASE not in str(info.value)
    with pytest.raises(SetupError, match="does not exist"):
        check_passphrase_file(tmp_path / "nope")


def test_missing_cli_says_how_to_install_the_pinned_version(tmp_path: Path) -> None:
    with pytest.raises(PulumiCliMissingError) as info:
        pulumi_command(tmp_path)
    message = str(info.value)
    assert "curl -fsSL https://get.pulumi.com | sh -s -- --version 3.272.0" in message
    assert pinned_cli_version() == "3.272.0" and pinned_cli_version() in install_hint()


def test_only_a_missing_cli_binary_is_a_missing_cli() -> None:
    from orchestrator.engine.errors import map_error

    cli_gone = FileNotFoundError(2, "No such file or directory", "/opt/pulumi/bin/pulumi")
    assert isinstance(
        map_error(cli_gone, "prod.acme", Operation.UP, cli="/opt/pulumi/bin/pulumi"), PulumiCliMissingError
    )
    other = FileNotFoundError(2, "No such file or directory", "/srv/work/prod.acme/Pulumi.prod.acme.yaml")
    mapped = map_error(other, "prod.acme", Operation.UP, cli="pulumi")
    assert not isinstance(mapped, PulumiCliMissingError) and isinstance(mapped, StackError)
    assert "Pulumi.prod.acme.yaml does not exist" in str(mapped)
