"""The audit log: append-only JSON lines, whole lines under concurrency, no secrets."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from orchestrator.core.errors import EdgeError
from orchestrator.core.masking import redact
from orchestrator.fleet.audit import AuditLog, read_events


def test_record_appends_one_json_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    log = AuditLog(path, who="ops@vps", run_id="run1")
    log.record(stack="prod.acme", tenant="acme", operation="up", result="ok", bundle_hash="ab" * 32)
    log.record(stack="prod.beta", tenant="beta", operation="up", result="failed", detail="boom\nsecond line")
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["tenant"] == "acme" and first["result"] == "ok" and first["who"] == "ops@vps"
    assert first["bundle_hash"] == "ab" * 32 and first["run_id"] == "run1"
    assert second["detail"] == "boom second line"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_existing_lines_are_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record(stack="prod.a", operation="up", result="ok")
    before = path.read_bytes()
    AuditLog(path).record(stack="prod.b", operation="up", result="ok")
    assert path.read_bytes().startswith(before)
    assert [e.stack for e in read_events(path)] == ["prod.a", "prod.b"]


def test_concurrent_writers_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    logs = [AuditLog(path, run_id=f"r{i}") for i in range(4)]

    def write(log: AuditLog) -> None:
        for n in range(50):
            log.record(stack=f"prod.t{n}", operation="up", result="ok", detail="x" * 300)

    threads = [threading.Thread(target=write, args=(log,)) for log in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = read_events(path)
    assert len(events) == 200
    assert {e.run_id for e in events} == {"r0", "r1", "r2", "r3"}


def test_detail_is_redacted_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-token-VALUE-123")
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record(
        stack="prod.acme",
        operation="up",
        result="failed",
        detail="401 using cf-token-VALUE-123; Authorization: Bearer abc.def " + "y" * 1000,
    )
    text = path.read_text()
    assert "cf-token-VALUE-123" not in text
    assert "abc.def" not in text
    event = read_events(path)[0]
    assert event.detail is not None and len(event.detail) <= 400


def test_redact_masks_headers_and_env_values() -> None:
    env = {"PULUMI_CONFIG_PASSPHRASE": "correct horse"}
    out = redact("pass=correct horse X-Edge-Health-Token: 1.2.3 bearer zzz", environ=env)
    assert "correct horse" not in out and "1.2.3" not in out and "zzz" not in out
    assert redact("nothing here", environ={}) == "nothing here"


def test_corrupt_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).record(stack="prod.a", operation="up", result="ok")
    with path.open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(EdgeError, match=r"audit\.jsonl: line 2 is not JSON"):
        read_events(path)


def test_missing_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text(json.dumps({"when": "2025-01-01T00:00:00Z"}) + "\n")
    with pytest.raises(EdgeError, match=r"line 1, field who"):
        read_events(path)


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EdgeError, match="cannot open for append"):
        AuditLog(blocker / "audit.jsonl").record(stack="prod.a", operation="up", result="ok")
