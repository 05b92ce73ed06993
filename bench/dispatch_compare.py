"""`local_edge_bench --isolation dispatch`: dispatch mode against workers mode at the same N.

Each repetition runs, in a rotating order, the whole `local up` of N tenants in workers mode and
in dispatch mode (each on a fresh state directory, each stack with its own salt, the key cache as a
user has it after a first run), measures GET / latency on the running edge (one request at a time,
round-robin over every hostname: in workers mode Miniflare routes straight to the tenant's Worker,
in dispatch mode every request goes through the dispatcher to the same bundle as a user Worker),
and the same with 1 tenant for memory per tenant (workerd + node runner RSS growth).
"""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.local_edge_run import MIB, Fleet, down, fleet, local_up, min_median
from orchestrator.core.model import Isolation

MODES: tuple[Isolation, ...] = ("workers", "dispatch")
TARGETS = {"dispatch_ready_ratio": 1.2, "dispatch_p50_ratio": 1.3}
WARM_REQUESTS = 50


def latencies(host: str, port: int, hostnames: list[str], requests: int) -> list[float]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    out: list[float] = []
    try:
        for i in range(requests):
            hostname = hostnames[i % len(hostnames)]
            started = time.perf_counter()
            conn.request("GET", "/", headers={"Host": hostname})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET / on {hostname}: HTTP {response.status}")
            out.append((time.perf_counter() - started) * 1000)
    finally:
        conn.close()
    return out


def run_once(fleet_: Fleet, state: Path, requests: int) -> dict[str, float]:
    """One whole `local up`: its seconds, the runner's ready time, RSS, GET / p50; always torn down."""
    up = local_up(fleet_, state)
    try:
        result = {"up_s": up.seconds, "runtime_ready_ms": float(up.info.ready_ms), "rss_mib": up.rss / MIB}
        if requests:
            hostnames = [h for t in up.info.tenants for h in t.hostnames]
            latencies(up.info.host, up.info.port, hostnames, min(len(hostnames), WARM_REQUESTS))
            result["p50_ms"] = statistics.median(latencies(up.info.host, up.info.port, hostnames, requests))
        return result
    finally:
        down(state)


def compare(n: int, root: Path, repeat: int, requests: int, say: Callable[[str], None] = print) -> dict[str, Any]:
    fleets = {(mode, size): fleet(size, root / f"{mode}-{size}", mode) for mode in MODES for size in (n, 1)}
    for (mode, size), fleet_ in fleets.items():  # untimed warm-up, and the key cache
        run_once(fleet_, root / f"warm-{mode}-{size}", 0)
    runs: dict[str, list[float]] = {}
    for rep in range(repeat):
        order = MODES if rep % 2 == 0 else MODES[::-1]
        for mode in order:
            big = run_once(fleets[(mode, n)], root / f"state-{mode}-{n}-{rep}", requests)
            one = run_once(fleets[(mode, 1)], root / f"state-{mode}-1-{rep}", 0)
            for name, value in big.items():
                runs.setdefault(f"{mode}_{name}", []).append(value)
            runs.setdefault(f"{mode}_mib_per_tenant", []).append((big["rss_mib"] - one["rss_mib"]) / (n - 1))
            say(f"rep {rep + 1}/{repeat} {mode}: up {big['up_s']:.1f} s, p50 {big['p50_ms']:.2f} ms")

    def ratio(key: str) -> list[float]:
        return [d / w for d, w in zip(runs[f"dispatch_{key}"], runs[f"workers_{key}"], strict=True)]

    per_rep = {
        "dispatch_ready_ratio": ratio("up_s"),
        "dispatch_runtime_ready_ratio": ratio("runtime_ready_ms"),
        "dispatch_p50_ratio": ratio("p50_ms"),
    }
    figures = {key: round(statistics.median(values), 3) for key, values in per_rep.items()}
    for mode in MODES:
        figures[f"{mode}_mib_per_tenant"] = round(statistics.median(runs[f"{mode}_mib_per_tenant"]), 3)
    return {
        "bench": "local_edge_bench",
        "isolation": "dispatch",
        "tenants": n,
        "repeat": repeat,
        "requests_per_run": requests,
        **figures,
        "targets": TARGETS,
        "met": {k: figures[k] <= v for k, v in TARGETS.items()},
        "per_rep": {k: min_median(v) for k, v in per_rep.items()},
        "runs": {k: min_median(v) for k, v in runs.items()},
    }
