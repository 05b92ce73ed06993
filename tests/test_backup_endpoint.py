"""Backups need CLAWDBOT_R2_ENDPOINT: without it, one `Error:` line naming it, never an AWS host.

Upstream (botocore 1.41.6, .venv/lib/python3.11/site-packages/botocore): with `endpoint_url=None`
a client derives AWS's endpoint from the region (`region_name="auto"`, R2's signing region, gives
`https://s3.auto.amazonaws.com`, asserted below), so every call failed as an
EndpointConnectionError naming that host; a malformed endpoint is a bare `ValueError("Invalid
endpoint: …")` from botocore/endpoint.py (`is_valid_endpoint_url`/`is_valid_ipv6_endpoint_url`,
which `botocore.utils.is_valid_uri` combines and `checked_endpoint` reuses).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from orchestrator.backup.errors import BackupError
from orchestrator.backup.store import S3Store, checked_endpoint


def test_without_an_endpoint_boto3_would_talk_to_aws() -> None:
    # The behaviour the check exists for (if botocore changes it, the reason in store.py changes).
    client = boto3.session.Session().client("s3", region_name="auto")
    assert client.meta.endpoint_url == "https://s3.auto.amazonaws.com"


@pytest.mark.parametrize(
    "args",
    [
        ["create"],
        ["create", "--escrow"],
        ["list"],
        ["list", "--json"],
        ["verify", "latest"],
        ["restore", "latest", "DEST"],
        ["prune", "--keep-last", "1"],
    ],
    ids=" ".join,
)
def test_every_backup_command_names_the_missing_variable(
    cli_env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    env = {
        **cli_env,
        "CLAWDBOT_ENV_FILE": os.devnull,
        "CLAWDBOT_R2_BUCKET": "backups",
        "CLAWDBOT_BACKUP_PASSPHRASE_FILE": str(tmp_path / "missing-backup-passphrase"),
        "AWS_ACCESS_KEY_ID": "key-id",
        "AWS_SECRET_ACCESS_KEY": "secret-key-value",
        "AWS_CONFIG_FILE": os.devnull,
    }
    args = [str(tmp_path / "restored") if a == "DEST" else a for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "backup", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    output = result.stdout + result.stderr
    assert "amazonaws" not in output and "Traceback" not in output and "secret-key-value" not in output
    if "--json" in args:
        assert '"error": "CLAWDBOT_R2_ENDPOINT is not set' in result.stdout
        return
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "Error: CLAWDBOT_R2_ENDPOINT is not set: set it to your R2 endpoint "
        "(https://<account id>.r2.cloudflarestorage.com, in /etc/clawdbot/clawdbot.env on a VPS)"
    ]
    assert not (tmp_path / "restored").exists()


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("", "is not set"),
        ("acct.r2.cloudflarestorage.com", "is not an endpoint URL"),
        ("https://", "is not an endpoint URL"),
        ("ftp://acct.r2.cloudflarestorage.com", "is not an endpoint URL"),
        ("https://acct r2.cloudflarestorage.com", "is not an endpoint URL"),
        ("https://acct.r2.cloudflarestorage.com\nX-Injected: 1", "is not an endpoint URL"),
        ("http://acct.r2.cloudflarestorage.com", "plain http only to a loopback address"),
        ("http://10.0.0.5:9000", "plain http only to a loopback address"),
    ],
)
def test_a_malformed_or_cleartext_endpoint_is_one_line(endpoint: str, reason: str) -> None:
    with pytest.raises(BackupError) as caught:
        S3Store("backups", endpoint)
    message = str(caught.value)
    assert message.startswith("CLAWDBOT_R2_ENDPOINT") and reason in message
    assert "\n" not in message.replace("\\n", "")  # the value is shown as a repr, one line


def test_credentials_in_the_endpoint_are_refused_without_echoing_them() -> None:
    with pytest.raises(BackupError) as caught:
        checked_endpoint("https://AKIDEXAMPLE:wJalrXUtnFEMI@acct.r2.cloudflarestorage.com")
    assert "holds credentials" in str(caught.value)
    assert "wJalrXUtnFEMI" not in str(caught.value) and "AKIDEXAMPLE" not in str(caught.value)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com",
        "https://0123456789abcdef0123456789abcdef.eu.r2.cloudflarestorage.com",
        "http://127.0.0.1:5000",
        "http://localhost:9000",
        "http://[::1]:9000",
    ],
)
def test_r2_and_loopback_endpoints_are_used_as_given(endpoint: str) -> None:
    assert S3Store("backups", endpoint).client.meta.endpoint_url == endpoint
