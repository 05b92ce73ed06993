"""Health polling against a real HTTP server on 127.0.0.1 that plays a tenant edge."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from orchestrator.core.contract import health_path
from orchestrator.core.health import HealthTarget, check_answer
from orchestrator.fleet.health import gate, probe, wait_healthy

HASH = "a" * 64


def doc(tenant: str = "acme", status: str = "ok", script: str = HASH, version: int = 3) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "status": status,
        "config": {"version": version, "source": "kv"},
        "script": {"version": script},
        "d1": {"reachable": True, "schema": "current"},
        "time": "2025-01-01T00:00:00Z",
    }


class Edge:
    """Scripted answers per path: a list of (status, body) consumed in order, the last one repeats."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, bytes]]] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        edge = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with edge.lock:
                    edge.hits[self.path] = edge.hits.get(self.path, 0) + 1
                    queue = edge.answers.get(self.path, [(404, b"not found")])
                    status, body = queue.pop(0) if len(queue) > 1 else queue[0]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        poll = {"poll_interval": 0.05}
        serve = threading.Thread(target=self.server.serve_forever, kwargs=poll, daemon=True)
        serve.start()

    def url(self, tenant: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{tenant}{health_path()}"

    def answer(self, tenant: str, *answers: dict[str, Any] | tuple[int, bytes]) -> HealthTarget:
        path = f"/{tenant}{health_path()}"
        self.answers[path] = [a if isinstance(a, tuple) else (200, json.dumps(a).encode()) for a in answers]
        return HealthTarget(
            stack=f"prod.{tenant}", tenant=tenant, url=self.url(tenant), bundle_hash=HASH, config_version=3
        )


@pytest.fixture
def edge() -> Iterator[Edge]:
    e = Edge()
    yield e
    e.server.shutdown()
    e.server.server_close()


def test_health_path_comes_from_the_contract() -> None:
    assert health_path() == "/_edge/health"


def test_ok_document_passes(edge: Edge) -> None:
    check = probe(edge.answer("acme", doc()))
    assert check.ok and check.doc is not None and check.doc.config.source == "kv"
    assert "config v3" in check.reason


@pytest.mark.parametrize(
    ("answer", "verdict", "reason"),
    [
        (doc(script="b" * 64), "wrong-version", "serves bundle bbbbbbbbbbbb, expected aaaaaaaaaaaa"),
        (doc(version=2), "wrong-version", "config version 2, expected >= 3"),
        (doc(tenant="other"), "wrong-tenant", "tenant 'other'"),
        (doc(status="degraded"), "degraded", "status degraded"),
        ((200, b"<html>"), "invalid", "is not JSON"),
        ((200, json.dumps({**doc(), "d1": {"reachable": True}}).encode()), "invalid", "field d1.schema"),
        ((200, json.dumps({**doc(), "status": "fine"}).encode()), "invalid", "field status"),
        ((500, b"oops"), "unreachable", "HTTP 500"),
        ((200, b" " * (64 * 1024 + 10)), "invalid", "larger than"),
    ],
)
def test_bad_answers_are_named(edge: Edge, answer: Any, verdict: str, reason: str) -> None:
    check = probe(edge.answer("acme", answer))
    assert not check.ok
    assert check.verdict == verdict
    assert reason in check.reason


def test_refused_connection_is_unreachable() -> None:
    check = probe(HealthTarget("prod.x", "x", "http://127.0.0.1:9/_edge/health"), timeout_s=1)
    assert check.verdict == "unreachable" and "cannot reach" in check.reason


def test_non_http_url_is_refused_without_a_request() -> None:
    check = probe(HealthTarget("prod.x", "x", "file:///etc/passwd"))
    assert check.verdict == "invalid" and "not http(s)" in check.reason


def test_degraded_then_ok_passes_after_polling(edge: Edge) -> None:
    target = edge.answer("acme", doc(status="degraded"), doc(status="degraded"), doc())
    check = wait_healthy(target, timeout_s=5, interval_s=0.01)
    assert check.ok and check.attempts == 3


def test_degraded_until_deadline_fails(edge: Edge) -> None:
    target = edge.answer("acme", doc(status="degraded"))
    check = wait_healthy(target, timeout_s=0.1, interval_s=0.02)
    assert check.verdict == "degraded" and check.attempts >= 3


def test_wrong_tenant_fails_fast(edge: Edge) -> None:
    target = edge.answer("acme", doc(tenant="beta"))
    check = wait_healthy(target, timeout_s=5, interval_s=0.01)
    assert check.verdict == "wrong-tenant" and check.attempts == 1


def test_gate_passes_only_when_every_tenant_is_ok(edge: Edge) -> None:
    good = edge.answer("acme", doc())
    bad = edge.answer("beta", doc(tenant="beta", status="degraded"))
    result = gate([good, bad], timeout_s=0.1, interval_s=0.02)
    assert not result.passed
    assert [c.target.tenant for c in result.failed] == ["beta"]
    assert gate([good], timeout_s=1, interval_s=0.02).passed
    assert gate([]).passed


def test_the_gate_deadline_is_shared_by_the_whole_wave(monkeypatch: pytest.MonkeyPatch) -> None:
    """More targets than parallel pollers: the late ones get what is left of one deadline."""
    import orchestrator.fleet.health as health_module
    from orchestrator.core.health import HealthCheck

    now = [0.0]
    lock = threading.Lock()
    probes: dict[str, int] = {}

    def fake_probe(target: HealthTarget, timeout_s: float = 5.0) -> HealthCheck:
        with lock:
            probes[target.tenant] = probes.get(target.tenant, 0) + 1
        return HealthCheck(target, "degraded", "status degraded")

    def sleep(seconds: float) -> None:
        with lock:
            now[0] += seconds

    monkeypatch.setattr(health_module, "probe", fake_probe)
    targets = [HealthTarget(f"prod.t{i}", f"t{i}", f"http://127.0.0.1:1/t{i}") for i in range(3)]
    result = gate(targets, timeout_s=10, interval_s=1, max_parallel=1, clock=lambda: now[0], sleep=sleep)
    assert not result.passed
    assert now[0] <= 10  # one deadline for the wave, not 10 s per tenant
    assert probes == {"t0": 11, "t1": 1, "t2": 1}  # t0: at 0, 1, ..., 10


def test_check_answer_judges_an_answer_however_it_was_fetched() -> None:
    # The local edge fetches through its own client; both paths share these rules.
    target = HealthTarget("prod.acme", "acme", "http://edge.acme.example.com:8787/_edge/health")
    assert check_answer(target, 503, b"{}").verdict == "unreachable"
    assert check_answer(target, 200, b" " * (64 * 1024 + 10)).verdict == "invalid"
    assert "is not JSON" in check_answer(target, 200, b"<html>").reason
