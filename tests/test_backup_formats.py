"""Backup formats refusing hostile input before any work: retention policies, manifest paths, KDF cost, credentials."""

from __future__ import annotations

import os
from typing import Any

import pytest
from backup_fixtures import repo

from orchestrator.backup.crypto import KdfParams
from orchestrator.backup.errors import BackupError
from orchestrator.backup.repository import Retention
from orchestrator.backup.snapshot import Entry
from orchestrator.backup.store import S3Store


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({}, "needs keep-last and/or keep-days"),
        ({"keep_last": 0}, "at least 1"),
        ({"keep_days": 0}, "positive"),
    ],
)
def test_retention_policy_validation(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(BackupError, match=message):
        Retention(**policy)


# -- inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../escape", "/etc/passwd", "state/../../x", ""])
def test_manifest_entries_cannot_point_outside_the_target(path: str) -> None:
    with pytest.raises(ValueError, match="unsafe path"):
        Entry(path=path, type="file", mode=0o600)


def test_kdf_cost_from_a_header_is_bounded() -> None:
    with pytest.raises(ValueError):
        KdfParams(n=2**24)
    with pytest.raises(ValueError, match="power of two"):
        KdfParams(n=3000)
    with pytest.raises(ValueError, match="needs 2048 MiB, over the 256 MiB cap"):
        KdfParams(n=2**20, r=16)  # each bound alone allowed this: 2 GiB per derivation
    with pytest.raises(ValueError):
        KdfParams(p=4)
    assert 128 * KdfParams(n=2**20, r=2).n * 2 == 256 << 20  # exactly at the cap is fine
    assert KdfParams() == KdfParams(n=2**17, r=8, p=1)


def test_missing_credentials_are_named(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(BackupError, match=r"no storage credentials .*AWS_ACCESS_KEY_ID"):
        repo(S3Store("whatever", endpoint)).list()
