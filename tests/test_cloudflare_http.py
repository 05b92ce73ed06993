"""One endpoint rule and one transport for our Cloudflare REST clients (D1 migrations, Workers for Platforms).

Both clients went to the API with their own copy of the same code: the endpoint
(`CLOUDFLARE_BASE_URL`, else the public API) and how a call that got no answer is told. Now
`orchestrator.core.cloudflare_api` and `components.cloudflare_http` hold them once; these tests hold
both clients to them. (D1's every failure mode: tests/test_d1_http.py.)
"""

from __future__ import annotations

import socket

import pytest
from hostile_http import Answer, hang_up, serve, stall_before_headers

import components.wfp_api
from components.d1_migrations import D1HttpExecutor, _executor
from components.wfp_api import NamespaceApi, NamespaceApiError
from orchestrator.core.cloudflare_api import BASE_URL_VARIABLE, PUBLIC_API_URL, api_base_url
from orchestrator.core.errors import MigrationError

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "token-canary-77aa"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, PUBLIC_API_URL),
        ({BASE_URL_VARIABLE: ""}, PUBLIC_API_URL),  # set but empty: as unset
        ({BASE_URL_VARIABLE: "http://127.0.0.1:8787/client/v4"}, "http://127.0.0.1:8787/client/v4"),
    ],
)
def test_the_endpoint_rule_and_both_clients_follow_it(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], expected: str
) -> None:
    assert PUBLIC_API_URL == "https://api.cloudflare.com/client/v4"  # the provider's default
    assert api_base_url(environ) == expected
    monkeypatch.delenv(BASE_URL_VARIABLE, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    d1 = _executor({"account_id": ACCOUNT, "database_id": "db", "api_token": TOKEN})
    assert d1.base_url == expected
    assert NamespaceApi(ACCOUNT, "ns", "acme").base_url == expected
    assert NamespaceApi(ACCOUNT, "ns", "acme", endpoint="http://proxy/client/v4/").base_url == "http://proxy/client/v4"


@pytest.mark.parametrize(
    ("answer", "told"),
    [
        (stall_before_headers, "no answer from http://127.0.0.1:[0-9]+/client/v4 within 0.5 s; "),
        (hang_up, "connection to .* broke"),
    ],
)
def test_both_clients_tell_a_missing_answer_alike(monkeypatch: pytest.MonkeyPatch, answer: Answer, told: str) -> None:
    monkeypatch.setattr(components.wfp_api, "HTTP_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    with serve(answer) as base_url:
        with pytest.raises(MigrationError, match=f"^D1 database db: {told}") as d1:
            D1HttpExecutor(ACCOUNT, "db", TOKEN, base_url=base_url, timeout_seconds=0.5).query("SELECT 1")
        with pytest.raises(NamespaceApiError, match=f"^tenant acme: listing scripts tagged tenant-acme: {told}") as wfp:
            NamespaceApi(ACCOUNT, "ns", "acme", endpoint=base_url).scripts_tagged("tenant-acme")
    for caught in (d1, wfp):
        assert TOKEN not in str(caught.value) and caught.value.__cause__ is None
    if answer is stall_before_headers:  # each says what to do when the request may have been applied
        assert "migrations already recorded are skipped" in str(d1.value)
        assert "uploads and secrets are idempotent" in str(wfp.value)


def test_nothing_listening_is_cannot_reach_for_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        base_url = f"http://127.0.0.1:{port}/client/v4"
        with pytest.raises(MigrationError, match=f"cannot reach {base_url}"):
            D1HttpExecutor(ACCOUNT, "db", TOKEN, base_url=base_url, timeout_seconds=0.5).query("SELECT 1")
        with pytest.raises(NamespaceApiError, match=f"cannot reach {base_url}"):
            NamespaceApi(ACCOUNT, "ns", "acme", endpoint=base_url).scripts_tagged("tenant-acme")
