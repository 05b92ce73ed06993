"""The simulated world a fleet rollout runs against in `bench.fleet_rollout`: all of it on loopback.

- `Upstream`: Cloudflare's API stand-in. It enforces the documented budget (1,200 requests per
  sliding 300 s, time-scaled) and answers 429 with `Retry-After` past it, counting what it refused.
- `ApiClient`: what the provider does, keep-alive HTTP to `CLOUDFLARE_BASE_URL` (the throttle proxy).
- `Edges`: every tenant's `/_edge/health`. A tenant serves its previous bundle until a propagation
  delay after its `up` returned, then the new one, so the real gate (`orchestrator.fleet.health.gate`,
  polling every 5 s scaled) waits as it would for Cloudflare to roll the new script out.
- `World`: the ports a rollout engine is given (executor, records, digests, renderer, gate), so an
  engine other than the embedded `Fleet` can run the very same rollout (`bench.fleet_rollout.ENGINES`).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from orchestrator.core import outputs as output_keys
from orchestrator.fleet.changes import Desired, Rendered
from orchestrator.fleet.ports import DeployedStore, HealthGate, OpRequest, StackExecutor, StackOutcome

TOKEN = "Bearer bench-token"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    """The default backlog (5) drops SYNs when a wave's probes connect at once: 1 s retransmits."""


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


@dataclass
class Upstream:
    """Cloudflare stand-in: sliding-window budget, 429 with Retry-After past it."""

    limit: int
    window: float
    served: int = 0
    refused: int = 0
    hits: deque[float] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self) -> bool:
        with self.lock:
            now = time.monotonic()
            while self.hits and self.hits[0] <= now - self.window:
                self.hits.popleft()
            if len(self.hits) >= self.limit:
                self.refused += 1
                return False
            self.hits.append(now)
            self.served += 1
            return True

    def serve(self) -> ThreadingHTTPServer:
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                ok = up.admit()
                body = b'{"success":true,"result":{}}' if ok else b'{"success":false,"errors":[{"code":10000}]}'
                self.send_response(200 if ok else 429)
                if not ok:
                    self.send_header("Retry-After", "5")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        return _serve(Handler)


class ApiClient:
    """What the provider does: keep-alive HTTP to CLOUDFLARE_BASE_URL, one connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()

    def __call__(self, stack: str, index: int) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        method = "PUT" if index % 3 == 0 else "GET"
        body = b"x" * 512 if method == "PUT" else None
        conn.request(
            method,
            f"/client/v4/accounts/a/workers/scripts/{stack}/{index}",
            body=body,
            headers={"Authorization": TOKEN},
        )
        response = conn.getresponse()
        response.read()
        with self.lock:
            self.statuses[response.status] = self.statuses.get(response.status, 0) + 1


class Edges:
    """Every tenant's health endpoint; a new bundle is served `delay(stack)` after its `up` returned."""

    def __init__(self, delay: Callable[[str], float]) -> None:
        self.delay = delay
        self.live_at: dict[str, tuple[float, str]] = {}
        self.probes = 0
        self.lock = threading.Lock()
        self.server = self._serve()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def deployed(self, stack: str, bundle_hash: str) -> None:
        with self.lock:
            self.live_at[stack] = (time.monotonic() + self.delay(stack), bundle_hash)

    def answer(self, tenant: str) -> dict[str, Any]:
        with self.lock:
            self.probes += 1
            live_at, bundle = self.live_at.get(f"prod.{tenant}", (0.0, "previous"))
        serving = bundle if time.monotonic() >= live_at else "previous"
        return {
            "tenant": tenant,
            "status": "ok",
            "config": {"version": 1, "source": "kv"},
            "script": {"version": serving},
            "d1": {"reachable": True, "schema": "current"},
            "time": "2026-01-01T00:00:00Z",
        }

    def _serve(self) -> ThreadingHTTPServer:
        edges = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                tenant = self.path.strip("/").split("/")[0]
                body = json.dumps(edges.answer(tenant)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return _serve(Handler)


class Propagating:
    """An executor whose every `up` tells the edges it happened (they serve it after a delay)."""

    def __init__(self, inner: StackExecutor, edges: Edges) -> None:
        self.inner = inner
        self.edges = edges

    def prepare(self) -> None:
        self.inner.prepare()

    def run(self, request: OpRequest) -> StackOutcome:
        outcome = self.inner.run(request)
        bundle = outcome.outputs.get(output_keys.BUNDLE_HASH)
        self.edges.deployed(request.stack, bundle if isinstance(bundle, str) else "")
        return outcome

    def rollback(self, stack: str, config_version: int | None) -> StackOutcome:
        return self.inner.rollback(stack, config_version)

    def outputs(self, stack: str) -> dict[str, Any]:
        return self.inner.outputs(stack)


@dataclass(frozen=True)
class World:
    """What any rollout engine is handed: the same ports the CLI wires to the real engine."""

    executor: StackExecutor
    store: DeployedStore
    desired: Callable[[str], Desired]
    render: Callable[[str], Rendered]
    gate: HealthGate
