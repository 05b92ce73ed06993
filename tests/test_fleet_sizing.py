"""Rollout concurrency and wave size computed from the API budget (orchestrator/fleet/sizing.py)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from orchestrator.engine.budget import ThrottleConfig
from orchestrator.fleet.sizing import (
    ENGINE_S_PER_UP,
    IDLE_SHARE,
    MAX_CONCURRENCY,
    MAX_WAVE_SIZE,
    REQUESTS_PER_UP,
    WAVE_IDLE_S,
    rollout_sizing,
)


def sizing_for(budget: int):  # type: ignore[no-untyped-def]
    return rollout_sizing(ThrottleConfig(requests=budget).rate)


def test_cloudflares_budget_gives_six_stacks_and_waves_of_72() -> None:
    # 1,200 requests / 5 min at the throttle's steady 95 %: 3.8 requests/s, 0.317 tenant ups/s.
    assert sizing_for(1200) == rollout_sizing(3.8)
    assert (sizing_for(1200).concurrency, sizing_for(1200).wave_size) == (6, 72)


@pytest.mark.parametrize("budget", [1, 60, 300, 600, 1200, 2400, 5000, 20_000, 100_000])
def test_the_formula_and_its_bounds_hold_for_any_budget(budget: int) -> None:
    rate = ThrottleConfig(requests=budget).rate
    sizing = rollout_sizing(rate)
    per_up = rate / REQUESTS_PER_UP
    assert 1 <= sizing.concurrency <= MAX_CONCURRENCY
    assert sizing.concurrency <= sizing.wave_size <= MAX_WAVE_SIZE
    if sizing.concurrency < MAX_CONCURRENCY:
        # Enough stacks that those outside their engine phase keep the budget busy, twice over.
        assert sizing.concurrency >= 2 * per_up * ENGINE_S_PER_UP - 1e-6
        assert sizing.concurrency - 1 < max(1, 2 * per_up * ENGINE_S_PER_UP)
    if sizing.wave_size < MAX_WAVE_SIZE:
        # The wave boundary's idle time is at most IDLE_SHARE of the wave's API time.
        assert IDLE_SHARE * sizing.wave_size / per_up >= WAVE_IDLE_S - 1e-6


def test_a_bigger_budget_never_sizes_smaller() -> None:
    sizes = [sizing_for(b) for b in range(100, 30_000, 700)]
    assert all(a.concurrency <= b.concurrency and a.wave_size <= b.wave_size for a, b in pairwise(sizes))


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_no_budget_is_refused(rate: float) -> None:
    with pytest.raises(ValueError):
        rollout_sizing(rate)
