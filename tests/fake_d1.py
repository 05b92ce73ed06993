"""A loopback stand-in for the D1 HTTP query API: real HTTP, SQLite behind it.

Like D1, a multi-statement query runs as one transaction: all of it commits or none of it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

QUERY_PATH = re.compile(r"^/client/v4/accounts/(?P<account>[0-9a-f]+)/d1/database/(?P<db>[0-9a-f-]+)/query$")


def split_statements(sql: str) -> list[str]:
    statements, current = [], ""
    for piece in sql.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n\t;"):
                statements.append(current)
            current = ""
    if current.strip(" \n\t;"):
        statements.append(current)
    return statements


class FakeD1:
    def __init__(self, token: str) -> None:
        self.token = token
        self.databases: dict[str, sqlite3.Connection] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def connection(self, database: str) -> sqlite3.Connection:
        if database not in self.databases:
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            conn.row_factory = sqlite3.Row
            self.databases[database] = conn
        return self.databases[database]

    def execute(self, database: str, sql: str) -> list[dict[str, Any]]:
        conn = self.connection(database)
        with self.lock:
            conn.execute("BEGIN")
            try:
                results = []
                for statement in split_statements(sql):
                    rows = [dict(r) for r in conn.execute(statement).fetchall()]
                    results.append({"results": rows, "success": True, "meta": {}})
                conn.execute("COMMIT")
                return results
            except sqlite3.Error:
                conn.execute("ROLLBACK")
                raise


def _handler(fake: FakeD1) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            match = QUERY_PATH.match(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            if not match:
                return self._reply(404, {"success": False, "errors": [{"code": 7000, "message": "No route"}]})
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                return self._reply(
                    401, {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]}
                )
            try:
                results = fake.execute(match["db"], body["sql"])
            except sqlite3.Error as exc:
                return self._reply(400, {"success": False, "errors": [{"code": 7500, "message": str(exc)}]})
            return self._reply(200, {"success": True, "errors": [], "result": results})

    return Handler


@contextmanager
def serve_fake_d1(token: str = "good-token") -> Iterator[tuple[FakeD1, str]]:
    fake = FakeD1(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/client/v4"
    finally:
        server.shutdown()
        server.server_close()
