"""Who is asking, may they, and how often: bearer tokens, JSON-only state changes, a rate limit.

Every API route but the liveness probe needs `Authorization: Bearer <token>`; the answer to a
missing, malformed, wrong or removed token is the same bare 401, so it tells a prober nothing.
The token is resolved to an actor (its name) once per request. State-changing requests also need
`Content-Type: application/json` (a form or a text body from another site is refused before it is
read; there are no cookies, so no request rides on a browser's credentials) and are rate-limited
per token name: one client's loop cannot starve the others or spin the fleet.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from orchestrator.server.tokens import TokenStore

MAX_TOKEN = 200
"""Longer than any token we issue: not worth hashing."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Unauthorized(Exception):
    """Answered 401 with no detail."""


class NotJson(Exception):
    """A state-changing request without a JSON body (415)."""


class RateLimited(Exception):
    def __init__(self, retry_after_s: float, per_minute: int) -> None:
        super().__init__(
            f"rate limit: at most {per_minute} state-changing requests per minute per token; "
            f"retry in {math.ceil(retry_after_s)} s"
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Actor:
    name: str

    @property
    def who(self) -> str:
        """How the audit log names this client."""
        return f"token:{self.name}"


class RateLimiter:
    """A token bucket per key: `per_minute` sustained, `burst` at once; refuses rather than waits."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1 or burst < 1:
            raise ValueError("rate limit and burst must be >= 1")
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            tokens, stamp = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited((1.0 - tokens) / self.rate, self.per_minute)
            self._buckets[key] = (tokens - 1.0, now)


class Guard:
    """The checks behind the route dependencies; one per app."""

    def __init__(self, tokens: TokenStore, limiter: RateLimiter) -> None:
        self.tokens = tokens
        self.limiter = limiter

    def actor(self, request: Request) -> Actor:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented or len(presented) > MAX_TOKEN:
            raise Unauthorized()
        name = self.tokens.verify(presented)
        if name is None:
            raise Unauthorized()
        return Actor(name)

    def changer(self, request: Request) -> Actor:
        actor = self.actor(request)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise NotJson()
        self.limiter.take(actor.name)
        return actor


CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Pure ASGI (no buffering, so event streams flow): strict CSP and no caching on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)
