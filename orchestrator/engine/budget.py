"""The API budget itself: how many requests may go upstream, per budget (fleet or credential), and when.

A token bucket sized so that no sliding window of `window_s` ever sees more than `requests`
(a steady rate of `safety * requests / window_s` plus a burst of `(1 - safety) * requests`), a
window guard that counts what was really sent, and the proxy's counters. Used by
`orchestrator.engine.throttle`; durations scale with `time_scale`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

FLEET_BUDGET = "fleet"
PER_TOKEN_BUDGET = "token"
BUDGET_KEYS = (FLEET_BUDGET, PER_TOKEN_BUDGET)


@dataclass(frozen=True)
class ThrottleConfig:
    """Budget and retry settings. Defaults are Cloudflare's documented API limit."""

    requests: int = 1200
    """Requests allowed per budget in any window of `window_s` seconds."""
    budget_key: str = FLEET_BUDGET
    """`fleet`: one budget for every request (Cloudflare counts per user, across tokens);
    `token`: one budget per credential."""
    window_s: float = 300.0
    """Length of Cloudflare's rate-limit window, in real seconds (before `time_scale`)."""
    safety: float = 0.95
    """Share of the budget spent at the steady rate; the rest is the initial burst."""
    max_attempts: int = 8
    """Upstream attempts per request (first try included) before answering 503."""
    backoff_base_s: float = 1.0
    """First retry delay for 5xx; doubles per attempt (with jitter)."""
    backoff_max_s: float = 60.0
    """Upper bound of one retry delay."""
    default_retry_after_s: float = 60.0
    """Pause after an upstream 429 that carries no Retry-After header."""
    time_scale: float = 1.0
    """Multiplies every duration above (0.01 turns 300 s into 3 s for tests and benchmarks)."""
    upstream_timeout_s: float = 60.0
    """Socket timeout towards the upstream API (not scaled)."""
    wire_slack: float = 0.02
    """Share of the window added to the hard cap's window. The cap counts requests when they leave;
    the upstream counts them when they arrive, so a request delayed more than the one after it could
    otherwise land in one upstream window with a full window's worth of others (6 s of 300 s)."""

    def __post_init__(self) -> None:
        if self.requests < 1 or self.window_s <= 0 or not 0 < self.safety <= 1:
            raise ValueError("throttle: requests >= 1, window_s > 0 and 0 < safety <= 1 are required")
        if self.budget_key not in BUDGET_KEYS:
            raise ValueError(f"throttle: budget_key must be one of {', '.join(BUDGET_KEYS)}")
        if self.max_attempts < 1 or self.time_scale <= 0:
            raise ValueError("throttle: max_attempts >= 1 and time_scale > 0 are required")
        if not 0 <= self.wire_slack < 1:
            raise ValueError("throttle: 0 <= wire_slack < 1 is required")

    @classmethod
    def for_node(cls, requests: int, share: float = 1.0, **settings: Any) -> ThrottleConfig:
        """The config of one node's proxy: its `node_share` of a user's budget of `requests`."""
        return cls(requests=node_share(requests, share), **settings)

    @property
    def window(self) -> float:
        return self.window_s * self.time_scale

    @property
    def rate(self) -> float:
        """Steady tokens per (scaled) second."""
        return self.requests * self.safety / self.window

    @property
    def burst(self) -> float:
        return max(1.0, self.requests * (1.0 - self.safety))

    @property
    def guard_window(self) -> float:
        """The hard cap's window: `window` plus the wire slack."""
        return self.window * (1.0 + self.wire_slack)


def node_share(requests: int, share: float) -> int:
    """This node's part of one Cloudflare user's budget of `requests` per window.

    Cloudflare counts per user, whatever token or machine a request comes from, so nodes spending
    one user's budget each take a fixed share (`Settings.api_budget_share`: 1/N for N equal nodes;
    the shares add up to at most 1). Each node's proxy caps itself at floor(requests x share) per
    window, so the nodes together never send more than `requests` in any window, without talking
    to each other and whatever the others do.
    """
    if not 0 < share <= 1:
        raise ValueError(f"a node's share of the API budget must be in (0, 1], got {share}")
    # The epsilon keeps 1200 x (1/3) at 400 where binary floating point gives 399.99999999999994.
    part = math.floor(requests * share + 1e-9)
    if part < 1:
        raise ValueError(f"a share of {share} leaves this node no request of {requests} per window")
    return part


class TokenBucket:
    """Thread-safe token bucket that hands out reservations, so waiters are served in order."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token and return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            # Refill only up to the time we can actually spend from; a pause accrues nothing.
            if start > self._stamp:
                self._tokens = min(self.burst, self._tokens + (start - self._stamp) * self.rate)
                self._stamp = start
            self._tokens -= 1.0
            ready = self._stamp if self._tokens >= 0 else self._stamp + (-self._tokens) / self.rate
            return max(0.0, ready - now)

    def pause(self, seconds: float) -> None:
        """Stop handing out tokens for `seconds` and forget the burst (after an upstream 429)."""
        with self._lock:
            now = self._clock()
            self._paused_until = max(self._paused_until, now + seconds)
            self._tokens = min(self._tokens, 0.0)
            self._stamp = max(self._stamp, self._paused_until)


class WindowGuard:
    """Hard cap at send time: never more than `limit` sends in any `window` seconds.

    The token bucket paces requests, but a thread that wakes late can bunch up with on-time ones;
    this log of the last `limit` send times catches that, so the guarantee holds at the wire.
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def wait_time(self) -> float:
        """Claim a send slot now and return 0, or return how long to wait before asking again."""
        with self._lock:
            now = self._clock()
            while self._sent and self._sent[0] <= now - self.window:
                self._sent.popleft()
            if len(self._sent) < self.limit:
                self._sent.append(now)
                return 0.0
            return self._sent[0] + self.window - now

    def pause(self, seconds: float) -> None:
        """After an upstream 429, treat the window as full for `seconds` (never shortening a pause)."""
        with self._lock:
            until = self._clock() + seconds - self.window
            # Each slot frees at max(its own time, until); the log stays sorted oldest first.
            kept = [max(until, sent) for sent in self._sent]
            self._sent = deque([until] * (self.limit - len(kept)) + kept)


@dataclass
class ThrottleStats:
    """Counters for tests, the benchmark and the end-of-run report (no request details)."""

    received: int = 0
    upstream_attempts: int = 0
    upstream_429: int = 0
    upstream_5xx: int = 0
    upstream_errors: int = 0
    retried: int = 0
    gave_up: int = 0
    client_429: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}
