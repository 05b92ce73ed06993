"""One Cloudflare API budget for every stack: a throttling reverse proxy on loopback.

pulumi-cloudflare v6 bridges terraform-provider-cloudflare v5, which has no rate limiting of its own
(TF#5505) while Cloudflare allows 1,200 requests per 5 minutes per *user*, cumulatively across the
dashboard, API keys and every API token of that user, and answers 429 (and blocks for minutes) past
that (developers.cloudflare.com/fundamentals/api/reference/limits). Every provider process of a
fleet run is pointed here through `CLOUDFLARE_BASE_URL` (set in the workspace env, so no stack config
changes). The proxy:

- spends one token bucket per budget for every upstream attempt, retries included, since Cloudflare
  counts those too. The budget key (`ThrottleConfig.budget_key`) says what a budget is: `fleet`
  (default) one for every request of the run, whatever token it carries, because two tokens of one
  user share one limit; `token` one per credential (a hash of the credential header, kept in memory
  only), right only when every token belongs to a different user or is account-owned;
- sizes the bucket so that no sliding window of `window_s` ever sees more than `requests`:
  a steady rate of `safety * requests / window_s` plus a burst of `(1 - safety) * requests`;
- retries upstream 429 and 5xx with backoff (honouring `Retry-After`, and pausing the whole bucket
  on a 429, because a 429 means someone else spends the same budget), so no 429 ever reaches the
  provider: when retries are exhausted the client gets a 503 with a Cloudflare-style error body.
  A non-idempotent request (POST, PATCH) is retried only when the upstream says it did not act on
  it: a 429, or a 503 carrying `Retry-After`. A 502/504 or a bare 503 may come after the origin
  acted, so it goes back to the client as is rather than being sent twice;
- passes `Authorization` (and every other end-to-end header) through untouched, drops hop-by-hop
  headers (the fixed list and any named in `Connection:`), and never logs any header, body or
  query string.

Paths: the provider's base URL is `http://127.0.0.1:<port>/client/v4`; requests arrive as
`/client/v4/<api path>` (or bare `/<api path>`) and go to `<upstream>/client/v4/<api path>`.
All durations scale with `time_scale`, so tests and the benchmark run a 300 s window in seconds.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from orchestrator.core.cloudflare_api import PUBLIC_API_URL
from orchestrator.engine.budget import (
    FLEET_BUDGET,
    PER_TOKEN_BUDGET,
    ThrottleConfig,
    ThrottleStats,
    TokenBucket,
    WindowGuard,
)

log = logging.getLogger(__name__)

API_PREFIX = "/client/v4"
DEFAULT_UPSTREAM = PUBLIC_API_URL

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
CREDENTIAL_HEADERS = ("authorization", "x-auth-key", "x-auth-user-service-key")


@dataclass(frozen=True)
class _Upstream:
    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> _Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"throttle: upstream URL must be http(s)://host[:port]/path, got {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def target(self, request_path: str) -> str:
        path, sep, query = request_path.partition("?")
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            path = path[len(API_PREFIX) :]
        if not path.startswith("/"):
            path = "/" + path
        return self.prefix + path + (sep + query if sep else "")


@dataclass(frozen=True)
class _Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers without hop-by-hop ones: the fixed list plus every header `Connection:` names."""
    pairs = list(headers)
    named = {
        token.strip().lower() for name, value in pairs if name.lower() == "connection" for token in value.split(",")
    }
    return [(k, v) for k, v in pairs if k.lower() not in HOP_BY_HOP and k.lower() not in named]


def _credential_key(headers: Message) -> str:
    """A stable bucket key per credential; the credential itself is never stored."""
    digest = hashlib.sha256()
    for name in CREDENTIAL_HEADERS:
        digest.update((headers.get(name) or "").encode("utf-8") + b"\0")
    return digest.hexdigest()


def _retry_after(headers: list[tuple[str, str]]) -> float | None:
    for name, value in headers:
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _retryable(method: str, reply: _Reply) -> bool:
    """May a 5xx be retried? Always for idempotent methods; otherwise only a 503 with Retry-After."""
    if method in IDEMPOTENT:
        return True
    return reply.status == 503 and _retry_after(reply.headers) is not None


def _error_body(status: int, message: str) -> bytes:
    errors = [{"code": status, "message": message}]
    body = {"success": False, "errors": errors, "messages": [], "result": None}
    return json.dumps(body).encode("utf-8")


class ThrottleProxy:
    """The proxy server. Use as a context manager; `base_url` is what the provider is given."""

    def __init__(
        self,
        upstream: str = DEFAULT_UPSTREAM,
        config: ThrottleConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`sleep` and `clock` are one time source: tests pass a virtual one, so that what the budget
        guarantees is checked without depending on how busy the machine is."""
        self.config = config or ThrottleConfig()
        self.stats = ThrottleStats()
        self._upstream = _Upstream.parse(upstream)
        self._sleep = sleep
        self._clock = clock
        self._buckets: dict[str, tuple[TokenBucket, WindowGuard]] = {}
        self._buckets_lock = threading.Lock()
        self._local = threading.local()
        self._server = _Server((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """Value for CLOUDFLARE_BASE_URL / cloudflare:baseUrl."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def start(self) -> ThrottleProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="throttle-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ThrottleProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def bucket_for(self, key: str) -> tuple[TokenBucket, WindowGuard]:
        with self._buckets_lock:
            pair = self._buckets.get(key)
            if pair is None:
                cfg = self.config
                pair = (
                    TokenBucket(cfg.rate, cfg.burst, self._clock),
                    WindowGuard(cfg.requests, cfg.guard_window, self._clock),
                )
                self._buckets[key] = pair
            return pair

    def forward(self, method: str, path: str, headers: Message, body: bytes) -> _Reply:
        """Send one client request upstream within the budget, retrying until it is not a 429."""
        cfg = self.config
        self.stats.add(received=1)
        key = _credential_key(headers) if cfg.budget_key == PER_TOKEN_BUDGET else FLEET_BUDGET
        bucket, guard = self.bucket_for(key)
        out_headers = _end_to_end(headers.items())
        target = self._upstream.target(path)
        last: _Reply | None = None
        for attempt in range(1, cfg.max_attempts + 1):
            wait = bucket.reserve()
            if wait > 0:
                self._sleep(wait)
            while (late := guard.wait_time()) > 0:
                self._sleep(late)
            self.stats.add(upstream_attempts=1)
            try:
                reply = self._send(method, target, out_headers, body)
            except (OSError, http.client.HTTPException) as exc:
                self.stats.add(upstream_errors=1)
                log.warning("upstream %s %s failed: %s", method, target.partition("?")[0], type(exc).__name__)
                if method not in IDEMPOTENT:
                    unreachable = _error_body(502, "throttle proxy: upstream unreachable")
                    return _Reply(502, "Bad Gateway", [], unreachable)
                self._backoff(attempt)
                continue
            if reply.status == 429:
                self.stats.add(upstream_429=1)
                pause = _retry_after(reply.headers)
                seconds = (cfg.default_retry_after_s if pause is None else pause) * cfg.time_scale
                bucket.pause(seconds)
                guard.pause(seconds)
            elif reply.status >= 500 and _retryable(method, reply):
                self.stats.add(upstream_5xx=1)
                last = reply
                self._backoff(attempt)
            else:
                return reply
            self.stats.add(retried=1)
        self.stats.add(gave_up=1)
        log.warning("giving up on %s %s after %d attempts", method, target.partition("?")[0], attempt)
        if last is not None:
            return last
        return _Reply(
            503,
            "Service Unavailable",
            [("Retry-After", str(int(cfg.default_retry_after_s)))],
            _error_body(503, "throttle proxy: Cloudflare API still rate-limiting after retries"),
        )

    def _backoff(self, attempt: int) -> None:
        cfg = self.config
        delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1))
        self._sleep(delay * cfg.time_scale * random.uniform(0.5, 1.0))

    def _send(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> _Reply:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        fresh = conn is None
        for _ in range(2):
            if conn is None:
                conn = self._upstream.connect(self.config.upstream_timeout_s)
                self._local.conn = conn
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", self._upstream.host)
                for name, value in headers:
                    conn.putheader(name, value)
                if body or method in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                response = conn.getresponse()
                data = response.read()
                reply_headers = _end_to_end(response.getheaders())
                if response.will_close:
                    conn.close()
                    self._local.conn = None
                return _Reply(response.status, response.reason, reply_headers, data)
            except BaseException as exc:
                conn.close()
                self._local.conn = conn = None
                stale = isinstance(exc, (ConnectionError, http.client.RemoteDisconnected))
                # A kept-alive connection the server already closed: one immediate reconnect.
                if fresh or not stale:
                    raise
                fresh = True
        raise ConnectionError("upstream connection failed twice")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _handler_for(proxy: ThrottleProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "clawdbot-throttle"

        def _relay(self) -> None:
            try:
                body = self._read_body()
            except ValueError:
                bad = _error_body(400, "throttle proxy: bad request body")
                self._answer(_Reply(400, "Bad Request", [], bad))
                return
            reply = proxy.forward(self.command, self.path, self.headers, body)
            if reply.status == 429:  # defensive: the loop above never returns one
                proxy.stats.add(client_429=1)
            self._answer(reply)

        def _read_body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError("negative Content-Length")
            return self.rfile.read(length) if length else b""

        def _answer(self, reply: _Reply) -> None:
            self.send_response(reply.status, reply.reason)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _relay

        def log_message(self, format: str, *args: object) -> None:
            # BaseHTTPRequestHandler would print the request line (with query) to stderr; we log nothing
            # from the client side beyond the method and path, and only at debug level.
            log.debug("%s %s", self.command, self.path.partition("?")[0])

    return Handler
