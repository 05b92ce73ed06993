"""`python -m orchestrator serve`: binding rules, the token commands, and a real server process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import EdgeError
from orchestrator.fleet.audit import read_events
from orchestrator.server.serve import check_bind
from orchestrator.server.tokens import TokenStore


@pytest.fixture
def environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "CLAWDBOT_AUDIT_LOG": str(tmp_path / "data" / "audit.jsonl"),
        "CLAWDBOT_STATE_DIR": str(tmp_path / "state"),
        "CLAWDBOT_WORK_ROOT": str(tmp_path / "work"),
        "CLAWDBOT_LOCAL_EDGE_DIR": str(tmp_path / "local-edge"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_token_add_prints_the_token_alone_once(environ: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["serve", "token", "add", "ci"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith("cbt_")
    assert "shown once" in result.stderr and token not in result.stderr
    path = Path(environ["CLAWDBOT_AUDIT_LOG"]).parent / "serve-tokens.json"
    assert TokenStore(path).verify(token) == "ci" and token not in path.read_text()
    listed = CliRunner().invoke(cli, ["serve", "token", "list", "--json"])
    assert [t["name"] for t in json.loads(listed.stdout)] == ["ci"] and token not in listed.stdout
    again = CliRunner().invoke(cli, ["serve", "token", "add", "ci"])
    assert again.exit_code == 1 and "token 'ci' exists already" in again.output
    removed = CliRunner().invoke(cli, ["serve", "token", "remove", "ci"])
    assert removed.exit_code == 0 and TokenStore(path).verify(token) is None
    gone = CliRunner().invoke(cli, ["serve", "token", "remove", "ci"])
    assert gone.exit_code == 1 and "Error: no token named 'ci' (tokens: none)" in gone.output
    events = read_events(Path(environ["CLAWDBOT_AUDIT_LOG"]))
    assert [(e.operation, e.result, e.detail) for e in events] == [
        ("serve-token", "added", "token ci"),
        ("serve-token", "removed", "token ci"),
    ]


def test_bad_token_names_are_refused(environ: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["serve", "token", "add", "Bad Name"])
    assert result.exit_code == 1 and "use 1-64 characters" in result.output


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.8.9.10"])
def test_loopback_binds_need_nothing(host: str) -> None:
    assert check_bind(host, 8790, expose=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "vps.example.com"])
def test_other_binds_need_expose_and_print_how_to_front_them(host: str) -> None:
    with pytest.raises(EdgeError, match=f"refusing to listen on {host}:8790, which is not a loopback address"):
        check_bind(host, 8790, expose=False)
    advice = check_bind(host, 8790, expose=True)
    assert advice is not None
    for way in ("ssh -N -L 8790:127.0.0.1:8790", "Cloudflare Tunnel + Access", "reverse proxy with TLS"):
        assert way in advice


def test_serve_refuses_a_public_bind_without_expose(environ: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "Error: refusing to listen on 0.0.0.0:8790" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_runs_a_real_server(environ: dict[str, str], tmp_path: Path) -> None:
    token = CliRunner().invoke(cli, ["serve", "token", "add", "ci"]).stdout.strip()
    port = _free_port()
    env = {**os.environ, **environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "serve", "--port", str(port), "--watch-interval", "60"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/live", timeout=2) as response:
                    assert json.loads(response.read()) == {"ok": True}
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("the server did not come up") from None
                time.sleep(0.2)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/tenants", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            tenants = [t["tenant"] for t in json.loads(response.read())["tenants"]]
        assert tenants == ["acme", "globex"]  # the checkout's example stacks
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tenants", timeout=10)
        assert refused.value.code == 401
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert f"control room on http://127.0.0.1:{port}/" in err
    assert token not in err
