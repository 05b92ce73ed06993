"""What the fleet deployed, kept per stack in its work dir (engine/records.py), read without the engine."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestrator.config.settings import Settings
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet.ports import DeployedRecord


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(project_dir=tmp_path, state_dir=tmp_path / "state", work_root=tmp_path / "work")


def _record() -> DeployedRecord:
    return DeployedRecord(
        stack="prod.acme", bundle_hash="h", config_version=3, health_url=None, config_digest="c",
        program_digest="p", render_digest="r", state_fingerprint=None, updated_at="2025-01-01T00:00:00Z",
    )  # fmt: skip


def test_deployed_store_round_trip_and_state_fingerprint(settings: Settings) -> None:
    store = FileDeployedStore(settings, "clawdbot")
    assert store.get("prod.acme") is None
    state = settings.state_dir / ".pulumi" / "stacks" / "clawdbot" / "prod.acme.json"
    state.parent.mkdir(parents=True)
    state.write_text("{}")
    record = store.put(_record())
    assert record.state_fingerprint is not None
    assert store.get("prod.acme") == record and not store.state_changed(record)
    state.write_text('{"changed": true}')
    assert store.state_changed(record)
    (settings.work_root / "prod.acme" / "deployed.json").write_text("{broken")
    assert store.get("prod.acme") is None  # a damaged record never lets a deploy be skipped


def test_mark_good_writes_the_last_good_record_atomically_and_private(settings: Settings) -> None:
    store = FileDeployedStore(settings, "clawdbot")
    record = store.put(_record())
    store.mark_good("prod.acme")
    work_dir = settings.work_root / "prod.acme"
    last_good = work_dir / "last-good.json"
    assert last_good.read_bytes() == (work_dir / "deployed.json").read_bytes()
    assert stat.S_IMODE(last_good.stat().st_mode) == 0o600
    assert store.last_good("prod.acme") == record
    assert not list(work_dir.glob(".*.tmp"))  # written beside and renamed over, never left half-done
