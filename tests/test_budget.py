"""The budget itself (engine/budget.py): the token bucket and the window guard, on a fake clock.

No sliding window ever sees more than the budget, whatever the arrival pattern; a pause after an
upstream 429 stops everyone and is never shortened. The proxy around them: tests/test_throttle.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orchestrator.engine.budget import ThrottleConfig, TokenBucket, WindowGuard


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ready_times(bucket: TokenBucket, clock: FakeClock, arrivals: list[float]) -> list[float]:
    out = []
    for t in arrivals:
        clock.now = t
        out.append(t + bucket.reserve())
    return out


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.mark.parametrize("pattern", ["flood", "bursty", "trickle"])
def test_bucket_never_exceeds_the_sliding_window(pattern: str) -> None:
    config = ThrottleConfig()  # real numbers: 1,200 per 300 s
    clock = FakeClock()
    bucket = TokenBucket(config.rate, config.burst, clock)
    arrivals: dict[str, Callable[[int], float]] = {
        "flood": lambda i: 0.0,
        "bursty": lambda i: (i // 300) * 200.0,
        "trickle": lambda i: i * 0.2,
    }
    times = ready_times(bucket, clock, [arrivals[pattern](i) for i in range(4000)])
    assert max_in_window(times, config.window) <= config.requests
    # and it does not waste the budget: sustained throughput is the safety share of it
    if pattern == "flood":
        assert max_in_window(times, config.window) >= 0.95 * config.requests


def test_pause_blocks_everyone_and_drops_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=10.0, clock=clock)
    assert bucket.reserve() == 0.0
    bucket.pause(30.0)
    assert bucket.reserve() == pytest.approx(31.0)  # after the pause, and no burst left


def test_window_guard_caps_sends_at_the_wire() -> None:
    clock = FakeClock()
    guard = WindowGuard(limit=3, window=10.0, clock=clock)
    assert [guard.wait_time() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now = 4.0
    assert guard.wait_time() == pytest.approx(6.0)  # the first send leaves the window at t=10
    clock.now = 10.0
    assert guard.wait_time() == 0.0
    guard.pause(30.0)
    assert guard.wait_time() == pytest.approx(30.0)


def test_a_shorter_pause_never_shortens_a_longer_one() -> None:
    clock = FakeClock()
    guard = WindowGuard(limit=3, window=10.0, clock=clock)
    guard.pause(30.0)
    clock.now = 1.0
    guard.pause(5.0)  # a later 429 with a short Retry-After
    assert guard.wait_time() == pytest.approx(29.0)
    bucket = TokenBucket(rate=1.0, burst=10.0, clock=clock)
    bucket.pause(30.0)
    bucket.pause(5.0)
    assert bucket.reserve() == pytest.approx(31.0)
