"""scripts/alert-hook.sh, run by clawdbot-alert@.service when a clawdbot-* unit fails."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from vps_setup import SCRIPTS

HOOK = SCRIPTS / "alert-hook.sh"
SECRET_PATH = "/services/T000/B000/s3cr3t-token"


class Webhook:
    def __init__(self, status: int) -> None:
        self.status = status
        self.bodies: list[dict[str, object]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append({"path": self.path, "type": self.headers["Content-Type"],
                                    "json": json.loads(self.rfile.read(length))})  # fmt: skip
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"


@pytest.fixture(params=[200, 500], ids=["ok", "failing"])
def webhook(request: pytest.FixtureRequest) -> Iterator[Webhook]:
    hook = Webhook(request.param)
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def alert(unit: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALERT_")}
    return subprocess.run(
        ["bash", str(HOOK), unit], capture_output=True, text=True, timeout=60, check=False, env={**clean, **env}
    )


def test_without_settings_it_logs_the_failure() -> None:
    result = alert("clawdbot-drift.service")
    assert result.returncode == 0, result.stderr
    assert "clawdbot-drift.service failed on " in result.stderr
    assert "journalctl -u clawdbot-drift.service" in result.stderr


def test_the_webhook_gets_json_and_the_url_is_never_printed(webhook: Webhook) -> None:
    result = alert("clawdbot-health.service", ALERT_WEBHOOK_URL=webhook.url)
    assert len(webhook.bodies) == 1
    body = webhook.bodies[0]
    assert body["path"] == SECRET_PATH and body["type"] == "application/json"
    sent = body["json"]
    assert isinstance(sent, dict) and sent["unit"] == "clawdbot-health.service"
    assert set(sent) == {"text", "unit", "host", "time"} and "failed on" in str(sent["text"])
    assert "s3cr3t-token" not in result.stdout + result.stderr
    if webhook.status == 200:
        assert result.returncode == 0 and "webhook notified" in result.stderr
    else:
        assert result.returncode == 1 and "webhook POST failed" in result.stderr


def test_an_escaped_unit_name_stays_valid_json(webhook: Webhook) -> None:
    unit = r"clawdbot-alert@clawdbot\x2dx.service"
    alert(unit, ALERT_WEBHOOK_URL=webhook.url)
    sent = webhook.bodies[0]["json"]
    assert isinstance(sent, dict) and sent["unit"] == unit


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com/x", "ftp://127.0.0.1/x", "https://a b", 'https://x"y', "file:///etc/passwd"],
)
def test_an_unsafe_webhook_url_is_not_used(url: str) -> None:
    result = alert("clawdbot-drift.service", ALERT_WEBHOOK_URL=url)
    assert result.returncode == 1 and "must be https://" in result.stderr
    assert url not in result.stderr


def test_the_alert_command_gets_the_unit(tmp_path: Path) -> None:
    out = tmp_path / "got"
    command = tmp_path / "page.sh"
    command.write_text(f'#!/bin/sh\necho "$1" > {out}\n')
    command.chmod(0o755)
    result = alert("clawdbot-backup.service", ALERT_COMMAND=str(command))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "clawdbot-backup.service\n"


@pytest.mark.parametrize("setting", ["relative/page.sh", "/nonexistent/page.sh", "/bin/false"])
def test_a_bad_or_failing_alert_command_fails_the_hook(setting: str) -> None:
    result = alert("clawdbot-backup.service", ALERT_COMMAND=setting)
    assert result.returncode == 1 and "ALERT_COMMAND" in result.stderr


@pytest.mark.parametrize("unit", ["", "a b.service", "x$(id).service", "x;rm.service", "a" * 300, "x\ny"])
def test_a_hostile_unit_name_is_refused(unit: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    command = tmp_path / "page.sh"
    command.write_text(f"#!/bin/sh\ntouch {marker}\n")
    command.chmod(0o755)
    result = alert(unit, ALERT_COMMAND=str(command))
    assert result.returncode == 1 and "not a unit name" in result.stderr
    assert not marker.exists()


def test_usage() -> None:
    result = subprocess.run(["bash", str(HOOK)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "usage: alert-hook.sh UNIT" in result.stderr


def test_a_schedule_names_where_to_look(tmp_path: Path) -> None:
    """Cluster mode: a failed Temporal schedule run alerts through this hook (orchestrator/ops/alerts.py)."""
    out = tmp_path / "got"
    command = tmp_path / "page.sh"
    command.write_text(f'#!/bin/sh\necho "$@" > {out}\n')
    command.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALERT_")}
    see = "temporal workflow describe -w clawdbot:p:q:backup:run-2026-12-01T03:41:00Z"
    result = subprocess.run(
        ["bash", str(HOOK), "clawdbot:p:q:backup", see],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, "ALERT_COMMAND": str(command)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.rstrip().endswith(f"; see: {see}") and "journalctl" not in result.stderr
    assert out.read_text() == "clawdbot:p:q:backup\n"  # the command gets the name alone, as for a unit


@pytest.mark.parametrize("see", ['a"b', "x $(id)", "a;b", "a\nb", "`id`", "x" * 600])
def test_a_hostile_place_to_look_is_refused(see: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    command = tmp_path / "page.sh"
    command.write_text(f"#!/bin/sh\ntouch {marker}\n")
    command.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALERT_")}
    result = subprocess.run(
        ["bash", str(HOOK), "clawdbot-drift.service", see],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, "ALERT_COMMAND": str(command)},
    )
    assert result.returncode == 1 and "not a command to look with" in result.stderr
    assert not marker.exists()
