"""The D1 HTTP executor turns every way the API call can fail into one MigrationError line.

A real loopback HTTP server answers each request in one hostile way; the error must name the
database, never carry the token, and never escape as a raw exception (a traceback in `pulumi up`).
"""

from __future__ import annotations

import json
import socket
import time
from http.server import BaseHTTPRequestHandler

import pytest
from hostile_http import Answer, hang_up, serve, stall_before_headers

from components.d1_migrations import D1HttpExecutor
from orchestrator.core.errors import MigrationError

ACCOUNT = "0123456789abcdef0123456789abcdef"
DB = "f46de935-c91b-5b1b-b357-3cbca3d9465c"
TOKEN = "token-canary-5b1b"


def _send(status: int, body: bytes, content_type: str = "application/json") -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def _stall_mid_body(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"success": true, ')
    handler.wfile.flush()
    time.sleep(1.5)


def _short_body(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"success": true')
    handler.wfile.flush()
    handler.connection.shutdown(socket.SHUT_RDWR)


def _query(base_url: str) -> list[dict[str, object]]:
    return D1HttpExecutor(ACCOUNT, DB, TOKEN, base_url=base_url, timeout_seconds=0.5).query("SELECT 1")


HOSTILE: dict[str, tuple[Answer, str]] = {
    "read timeout before headers": (stall_before_headers, "no answer from .* within 0.5 s"),
    "read timeout mid body": (_stall_mid_body, "no answer from .* within 0.5 s"),
    "body cut short": (_short_body, "connection to .* broke"),
    "connection closed without an answer": (hang_up, "connection to .* broke"),
    "2xx HTML": (_send(200, b"<html>gateway</html>", "text/html"), "not JSON"),
    "2xx empty body": (_send(200, b""), "not JSON"),
    "2xx JSON array": (_send(200, b"[1, 2]"), "JSON that is not an object"),
    "2xx result not a list": (_send(200, json.dumps({"success": True, "result": "x"}).encode()), "result is not"),
    "2xx rows not objects": (
        _send(200, json.dumps({"success": True, "result": [{"results": [1]}]}).encode()),
        "rows are not a list of objects",
    ),
    "2xx success missing": (_send(200, b"{}"), "query failed: no detail"),
    "2xx success as a string": (_send(200, json.dumps({"success": "yes"}).encode()), "query failed"),
    "5xx HTML": (_send(502, b"<html>bad gateway</html>", "text/html"), "HTTP 502: unreadable error body"),
    "4xx errors not objects": (_send(400, json.dumps({"errors": ["boom"]}).encode()), "HTTP 400: unreadable error"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_failure_is_one_migration_error_naming_the_database(case: str) -> None:
    answer, expected = HOSTILE[case]
    with serve(answer) as base_url, pytest.raises(MigrationError, match=expected) as caught:
        _query(base_url)
    message = str(caught.value)
    assert message.startswith(f"D1 database {DB}: "), message
    assert TOKEN not in message
    # No chained raw exception: the provider host would print it as a traceback.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_a_well_formed_answer_still_returns_the_last_statements_rows() -> None:
    body = {"success": True, "errors": [], "result": [{"results": []}, {"results": [{"name": "0001_init.sql"}]}]}
    with serve(_send(200, json.dumps(body).encode())) as base_url:
        assert _query(base_url) == [{"name": "0001_init.sql"}]


def test_connect_timeout_names_the_endpoint() -> None:
    # A listening socket that never accepts: the backlog fills, then connects hang until the timeout.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        port = sock.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            with pytest.raises(MigrationError, match=f"D1 database {DB}: (cannot reach|no answer from|connection to)"):
                _query(f"http://127.0.0.1:{port}/client/v4")
        finally:
            for filler in fillers:
                filler.close()
