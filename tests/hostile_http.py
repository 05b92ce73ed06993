"""A loopback HTTP server that answers every request one hostile way, for the REST clients' tests.

Used by tests/test_d1_http.py (every way a D1 query can fail) and tests/test_cloudflare_http.py
(both Cloudflare clients tell a missing answer alike). Any method; the body is read first.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[BaseHTTPRequestHandler], None]


def stall_before_headers(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(1.5)


def hang_up(handler: BaseHTTPRequestHandler) -> None:
    handler.connection.shutdown(socket.SHUT_RDWR)


@contextmanager
def serve(answer: Answer) -> Iterator[str]:
    """The server's API base URL (`http://127.0.0.1:<port>/client/v4`) while it runs."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _any(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with suppress(OSError):  # the client gave up first, as intended
                answer(self)

        do_GET = do_POST = do_PUT = do_DELETE = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/client/v4"
    finally:
        server.shutdown()
        server.server_close()
