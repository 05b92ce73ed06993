"""HTTP to the local runtime: tenant requests routed by `Host`, and the token-guarded control worker.

Everything goes to the one loopback socket of the runtime; the `Host` header picks the tenant,
exactly as the hostname does on Cloudflare. Control calls carry `MF-Route-Override` (Miniflare's
way to address a worker by name) and the bearer token; the token never appears in an error.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.local_edge.errors import LocalEdgeError

ROUTE_OVERRIDE_HEADER = "MF-Route-Override"
MAX_RESPONSE = 4 * 1024 * 1024


@dataclass(frozen=True)
class EdgeResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise LocalEdgeError(
                f"expected JSON, got {len(self.body)} bytes of something else (HTTP {self.status})"
            ) from None


@dataclass(frozen=True)
class EdgeClient:
    """Sends requests to tenants of the local runtime by hostname."""

    host: str
    port: int
    timeout_s: float = 10.0

    def request(
        self,
        hostname: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> EdgeResponse:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            conn.request(method, path, body=body, headers={"Host": hostname, **(headers or {})})
            response = conn.getresponse()
            data = response.read(MAX_RESPONSE + 1)
            return EdgeResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        except (OSError, http.client.HTTPException) as exc:
            raise LocalEdgeError(
                f"local edge at {self.host}:{self.port} did not answer {method} {hostname}{path} "
                f"({exc.__class__.__name__}: {exc})"
            ) from None
        finally:
            conn.close()


@dataclass(frozen=True)
class ControlClient:
    """The control worker: seed-time stores of every tenant, reachable only with the token."""

    edge: EdgeClient
    worker: str
    token: str = field(repr=False)

    def _call(
        self, method: str, path: str, params: Mapping[str, str], body: bytes | None = None, *, what: str
    ) -> EdgeResponse:
        query = urllib.parse.urlencode(params)
        response = self.edge.request(
            "control.local",
            method,
            f"{path}?{query}" if query else path,
            body=body,
            headers={ROUTE_OVERRIDE_HEADER: self.worker, "Authorization": f"Bearer {self.token}"},
        )
        if response.status == 401:
            raise LocalEdgeError(
                f"{what}: the control worker refused the token (the state directory's control.token "
                "does not match the running runtime; run `local down` and `local up`)"
            )
        if response.status >= 500:
            raise LocalEdgeError(f"{what}: control worker failed with HTTP {response.status}")
        return response

    def ping(self) -> list[str]:
        response = self._call("GET", "/ping", {}, what="ping")
        tenants: list[str] = response.json()["tenants"]
        return tenants

    def kv_get(self, tenant: str, key: str) -> str | None:
        response = self._call("GET", "/kv", {"tenant": tenant, "key": key}, what=f"tenant {tenant}: KV get {key}")
        if response.status == 404:
            if response.json().get("error") == "unknown tenant":
                raise LocalEdgeError(f"tenant {tenant}: not running in the local edge")
            return None
        return response.body.decode("utf-8")

    def kv_put(self, tenant: str, key: str, value: str) -> None:
        what = f"tenant {tenant}: KV put {key}"
        response = self._call("PUT", "/kv", {"tenant": tenant, "key": key}, value.encode("utf-8"), what=what)
        self._expect_ok(response, tenant, what)

    def kv_delete(self, tenant: str, key: str) -> None:
        what = f"tenant {tenant}: KV delete {key}"
        self._expect_ok(self._call("DELETE", "/kv", {"tenant": tenant, "key": key}, what=what), tenant, what)

    def kv_keys(self, tenant: str) -> list[str]:
        what = f"tenant {tenant}: KV list"
        response = self._call("GET", "/kv/keys", {"tenant": tenant}, what=what)
        self._expect_ok(response, tenant, what)
        keys: list[str] = response.json()["keys"]
        return keys

    def query(self, tenant: str, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        """Rows of one read-only statement against the tenant's D1 database."""
        what = f"tenant {tenant}: D1 query"
        body = json.dumps({"sql": sql, "params": list(params)}).encode()
        response = self._call("POST", "/d1/query", {"tenant": tenant}, body, what=what)
        self._expect_ok(response, tenant, what)
        rows: list[dict[str, Any]] = response.json()["rows"]
        return rows

    @staticmethod
    def _expect_ok(response: EdgeResponse, tenant: str, what: str) -> None:
        if response.status == 200:
            return
        error = response.json().get("error", "unknown error") if response.body else "no detail"
        if error == "unknown tenant":
            raise LocalEdgeError(f"tenant {tenant}: not running in the local edge")
        raise LocalEdgeError(f"{what}: HTTP {response.status}: {error}")
