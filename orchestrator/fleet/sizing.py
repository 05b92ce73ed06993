"""How many stacks to run at once and how many tenants per wave, computed from the API budget.

A fleet `up` is bound by Cloudflare's budget, not the CPU: the best rollout keeps the throttle's
steady rate (`requests_per_s`) busy from the first wave to the last. Two things leave it idle:

- the engine phase of an `up` (CLI start, plugins, program, diff: no API calls). While one stack
  is in it, others must be spending the budget, so `concurrency` covers the engine time of the
  stacks that are not calling the API, twice over (their starts bunch up at every wave start):
  `concurrency = ceil(2 * requests_per_s * ENGINE_S_PER_UP / REQUESTS_PER_UP)`;
- the wave boundary: the wave's first stacks are all in their engine phase, and the health gate
  polls every 5 s until the last tenant serves its new bundle (`WAVE_IDLE_S` together). A wave
  must spend the budget long enough that this idle time stays under `IDLE_SHARE` of it:
  `wave_size = ceil(requests_per_s * (WAVE_IDLE_S / IDLE_SHARE) / REQUESTS_PER_UP)`.

At Cloudflare's 1,200 requests / 5 min (4/s, 3.8/s steady in the throttle) that is 6 stacks at once
and waves of 72 after the canary; measured by `bench/fleet_rollout.py` as `budget_use_defaults`
(0.91 of the budget for 200 tenants with the real 5 s gate; 0.68 with the old constants 4 and 10).
The model's figures are those of a typical tenant `up` that changes its bundle; `--concurrency` and
`--wave-size` override them (a smaller wave is a smaller blast radius before the gate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.fleet.health import GATE_INTERVAL_S

REQUESTS_PER_UP = 12
"""Cloudflare API requests of one tenant `up` that changes its bundle (script upload and settings,
the config and secret KV entries, crons, reads back)."""
ENGINE_S_PER_UP = 8.0
"""Seconds of one `up` outside its API requests (CLI start, plugin load, program, diff)."""
WAVE_IDLE_S = ENGINE_S_PER_UP + 2 * GATE_INTERVAL_S
"""API idle time at each wave boundary: the first stacks' engine phase, then the gate's polls
(a new bundle takes seconds to reach the edge, so the last tenant is healthy one or two polls later)."""
IDLE_SHARE = 0.08
"""At most this share of a wave's API time may be that idle time. With the canary's own idle time
and the throttle's 5 % reserve this leaves about 0.9 of the budget used over a 200-tenant rollout."""
MAX_CONCURRENCY = 32
MAX_WAVE_SIZE = 1000


@dataclass(frozen=True)
class Sizing:
    concurrency: int
    wave_size: int


def rollout_sizing(requests_per_s: float) -> Sizing:
    """Concurrency and wave size that keep a budget of `requests_per_s` busy (see the module doc)."""
    if not requests_per_s > 0:
        raise ValueError("the API budget must allow some requests per second")
    per_up = requests_per_s / REQUESTS_PER_UP  # tenant ups per second the budget pays for
    concurrency = min(MAX_CONCURRENCY, max(1, _ceil(2 * per_up * ENGINE_S_PER_UP)))
    wave_size = min(MAX_WAVE_SIZE, max(concurrency, _ceil(per_up * WAVE_IDLE_S / IDLE_SHARE)))
    return Sizing(concurrency, wave_size)


def _ceil(value: float) -> int:
    """Ceiling that ignores float noise (a product meant to be 57 must not come out as 57.000000000000007)."""
    return math.ceil(round(value, 6))
