"""A project for the secret commands' tests: stack files, a 0600 passphrase file, the CLI pointed at them.

Shared by tests/test_secrets_cmd.py (`secrets set|rotate`) and tests/test_secrets_bulk.py
(`secrets list|unset|import`, `audit`), which each bring their own passphrase and tenant files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from orchestrator.config.secrets_provider import new_encryption_salt


def salt_for(passphrase: str) -> str:
    """A new encryption salt; take one per module (a module-scoped fixture): each new salt costs a
    PBKDF2 derivation (1M rounds), cached by orchestrator.config.secrets_provider after the first."""
    return new_encryption_salt(passphrase)


def secrets_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passphrase: str, tenant_files: Mapping[str, str]
) -> Path:
    """`tmp_path/project` with the platform stack and `tenant_files` (tenant id → stack file text),
    the passphrase in `tmp_path/passphrase` (0600), and the audit log in `tmp_path/audit.jsonl`."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.prod.yaml").write_text("config: {}\n")
    for tenant, text in tenant_files.items():
        (project / f"Pulumi.prod.{tenant}.yaml").write_text(text)
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(passphrase + "\n")
    passphrase_file.chmod(0o600)
    monkeypatch.setenv("CLAWDBOT_PROJECT_DIR", str(project))
    monkeypatch.setenv("CLAWDBOT_PASSPHRASE_FILE", str(passphrase_file))
    monkeypatch.setenv("CLAWDBOT_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    return project
