"""Local edge benchmark: bring-up time, requests/s across tenants, runtime memory per tenant.

Measured side by side in one run against the anchor: bare Miniflare with the same number of trivial
workers (each with its own KV and D1, routed by hostname). Loopback only, bounded load.

    .venv/bin/python -m bench.local_edge_bench [--tenants 50] [--repeat 2] [--seconds 5] [--clients 8]
    .venv/bin/python -m bench.local_edge_bench --isolation dispatch --tenants 200 [--requests 400] --json

`--isolation dispatch` compares dispatch mode with workers mode instead (bench/dispatch_compare.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from orchestrator.config.tenant_config import load_platform_spec
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.model import Isolation
from orchestrator.local_edge import LocalEdge, prepare_tenants
from orchestrator.local_edge import process as proc
from orchestrator.ops.scratch import ScratchProject, synthetic_tenant, write_passphrase_file

BARE = Path(__file__).with_name("local_edge_bare.mjs")
MIB = 2**20


def workerd_rss(pgid: int) -> int:
    return sum(proc.rss_bytes(p) or 0 for p in proc.workerd_pids(pgid))


def bare(n: int, work: Path) -> tuple[float, int]:
    """(ready ms, workerd RSS bytes) of bare Miniflare with n trivial workers."""
    child = subprocess.Popen(
        ["node", str(BARE), str(n), str(work)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
    )
    assert child.stdout is not None and child.stdin is not None
    line = child.stdout.readline()
    if not line:
        raise RuntimeError(f"bare Miniflare with {n} workers did not start (exit {child.wait()})")
    ready = float(json.loads(line)["ready_ms"])
    time.sleep(0.5)
    rss = workerd_rss(child.pid)
    child.stdin.close()
    child.wait(timeout=30)
    return ready, rss


def project(n: int, root: Path, isolation: Isolation = "workers") -> tuple[ScratchProject, Path]:
    passphrase = root / "passphrase"
    scratch = ScratchProject(root / "project", write_passphrase_file(passphrase), source=REPO_ROOT)
    if isolation != "workers":
        scratch.use_isolation(isolation)
    for index in range(n):
        scratch.add_tenant(synthetic_tenant(index))
    return scratch, passphrase


def ours(scratch: ScratchProject, passphrase: Path, state: Path) -> dict[str, float]:
    """Cold then warm bring-up of the local edge (state kept between the two)."""
    edge = LocalEdge(state)
    t0 = time.perf_counter()
    prepared = prepare_tenants(scratch.root, edge.layout, passphrase_file=passphrase)
    prepare_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    cold = edge.up(prepared, port=0)
    cold_up_s = time.perf_counter() - t1
    time.sleep(0.5)
    rss = workerd_rss(cold.pid)
    edge.down()
    t2 = time.perf_counter()
    warm = edge.up(prepare_tenants(scratch.root, edge.layout, passphrase_file=passphrase), port=0)
    warm_total_s = time.perf_counter() - t2
    edge.down()
    return {
        "prepare_s": prepare_s,
        "cold_up_s": cold_up_s,
        "cold_runtime_ready_ms": cold.runtime_ready_ms,
        "cold_ready_ms": cold.ready_ms,
        "warm_ready_ms": warm.ready_ms,
        "warm_total_s": warm_total_s,
        "rss": rss,
    }


def load(scratch: ScratchProject, passphrase: Path, state: Path, seconds: float, clients: int) -> dict[str, float]:
    """GET / round-robin across every tenant's hostnames, `clients` keep-alive connections, bounded time."""
    edge = LocalEdge(state)
    info = edge.up(prepare_tenants(scratch.root, edge.layout, passphrase_file=passphrase), port=0)
    hosts = [h for t in info.tenants for h in t.hostnames]
    counts = [0] * clients
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(info.host, info.port, timeout=10)
        i = index
        while time.monotonic() < stop:
            conn.request("GET", "/", headers={"Host": hosts[i % len(hosts)]})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                counts[index] += 1
            else:
                errors[index] += 1
            i += clients
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    edge.down()
    return {"rps": sum(counts) / elapsed, "errors": float(sum(errors)), "hosts": float(len(hosts))}


# --- --isolation dispatch: dispatch mode against workers mode ----------------------------------
# Each repetition brings up, interleaved, workers mode then dispatch mode with the same N tenants
# (and with 1, for memory per tenant), measures the runtime's ready time, workerd's RSS and GET /
# latency sent one at a time round-robin across every hostname: in workers mode Miniflare routes
# straight to the tenant's Worker, in dispatch mode every request goes through the dispatcher to the
# same bundle as a user Worker. Ratios are dispatch ÷ workers of the medians.

MODES: tuple[Isolation, ...] = ("workers", "dispatch")
TARGET_READY_RATIO = 1.2
TARGET_P50_RATIO = 1.3


def _latencies(host: str, port: int, hostnames: list[str], requests: int) -> list[float]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    out: list[float] = []
    try:
        for i in range(requests):
            started = time.perf_counter()
            conn.request("GET", "/", headers={"Host": hostnames[i % len(hostnames)]})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET / on {hostnames[i % len(hostnames)]}: HTTP {response.status}")
            out.append((time.perf_counter() - started) * 1000)
    finally:
        conn.close()
    return out


def run_once(project: ScratchProject, passphrase: Path, state: Path, requests: int) -> dict[str, float]:
    """One cold bring-up: ready time, RSS, and (when asked) request latencies; always torn down."""
    edge = LocalEdge(state)
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=passphrase)
    # 200 tenants on a loaded 2-core box can take minutes to start: the runtime default (120 s) is too short.
    info = edge.up(prepared, port=0, platform=load_platform_spec(project.root), timeout_s=900)
    try:
        time.sleep(0.5)
        result: dict[str, float] = {"ready_ms": float(info.ready_ms), "rss": float(workerd_rss(info.pid))}
        if requests:
            hostnames = [h for t in info.tenants for h in t.hostnames]
            _latencies(info.host, info.port, hostnames, min(len(hostnames), 50))  # warm every isolate once
            sample = _latencies(info.host, info.port, hostnames, requests)
            result |= {"p50_ms": statistics.median(sample), "min_ms": min(sample)}
        return result
    finally:
        edge.down()


def compare(n: int, root: Path, repeat: int, requests: int, say: Any = print) -> dict[str, Any]:
    projects = {(mode, size): project(size, root / f"{mode}-{size}", mode) for mode in MODES for size in (n, 1)}
    runs: dict[str, list[float]] = {}
    for rep in range(repeat):
        for mode in MODES:  # interleaved: machine load hits both modes alike
            big = run_once(*projects[(mode, n)], root / f"state-{mode}-{n}-{rep}", requests)
            one = run_once(*projects[(mode, 1)], root / f"state-{mode}-1-{rep}", 0)
            runs.setdefault(f"{mode}_ready_ms", []).append(big["ready_ms"])
            runs.setdefault(f"{mode}_p50_ms", []).append(big["p50_ms"])
            runs.setdefault(f"{mode}_min_ms", []).append(big["min_ms"])
            runs.setdefault(f"{mode}_mib_per_tenant", []).append((big["rss"] - one["rss"]) / max(1, n - 1) / MIB)
            say(f"rep {rep + 1}/{repeat} {mode}: ready {big['ready_ms']:.0f} ms, p50 {big['p50_ms']:.2f} ms")
    med = {k: statistics.median(v) for k, v in runs.items()}
    mins = {k: min(v) for k, v in runs.items()}
    ready_ratio = med["dispatch_ready_ms"] / med["workers_ready_ms"]
    p50_ratio = med["dispatch_p50_ms"] / med["workers_p50_ms"]
    return {
        "isolation": "dispatch",
        "tenants": n,
        "repeat": repeat,
        "requests_per_run": requests,
        "runs": runs,
        "median": med,
        "min": mins,
        "ratios": {
            "ready_dispatch_over_workers": round(ready_ratio, 3),
            "p50_dispatch_over_direct": round(p50_ratio, 3),
        },
        "targets": {
            "ready_ratio_max": TARGET_READY_RATIO,
            "p50_ratio_max": TARGET_P50_RATIO,
            "ready_met": ready_ratio <= TARGET_READY_RATIO,
            "p50_met": p50_ratio <= TARGET_P50_RATIO,
        },
        "mib_per_tenant": {m: round(med[f"{m}_mib_per_tenant"], 2) for m in MODES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--isolation",
        choices=["workers", "dispatch"],
        default="workers",
        help="dispatch: ready time and GET / latency through the dispatcher, each ÷ workers mode at the same N",
    )
    parser.add_argument("--requests", type=int, default=400, help="dispatch comparison: requests per run")
    parser.add_argument("--json", action="store_true", help="print one JSON object only (dispatch comparison)")
    args = parser.parse_args()
    n = args.tenants
    if n < 2:
        parser.error("--tenants must be at least 2 (memory per tenant compares N with 1)")
    if args.isolation == "dispatch":
        with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
            say = (lambda _m: None) if args.json else print
            result = compare(n, Path(tmp), args.repeat, args.requests, say)
        print(json.dumps(result, indent=None if args.json else 2))
        return
    with tempfile.TemporaryDirectory(prefix="local-edge-bench-") as tmp:
        root = Path(tmp)
        scratch_n, pass_n = project(n, root / "n")
        scratch_1, pass_1 = project(1, root / "one")
        rows: dict[str, list[float]] = {}

        def add(key: str, value: float) -> None:
            rows.setdefault(key, []).append(value)

        for rep in range(args.repeat):
            # Interleaved so machine load (a shared 2-core box) hits both sides alike.
            ready, rss_n = bare(n, root / f"bare-{rep}")
            _, rss_1 = bare(1, root / f"bare1-{rep}")
            add("bare_ready_ms", ready)
            add("bare_mib_per_worker", (rss_n - rss_1) / (n - 1) / MIB)
            add("bare_rss_1_mib", rss_1 / MIB)
            add("bare_rss_n_mib", rss_n / MIB)
            res_n = ours(scratch_n, pass_n, root / f"state-{rep}")
            res_1 = ours(scratch_1, pass_1, root / f"state1-{rep}")
            for key, value in res_n.items():
                add(f"ours_{key}", value / MIB if key == "rss" else value)
            add("ours_rss_1", res_1["rss"] / MIB)
            add("ours_mib_per_tenant", (res_n["rss"] - res_1["rss"]) / (n - 1) / MIB)
        lo = load(scratch_n, pass_n, root / "state-0", args.seconds, args.clients)
        median = {k: statistics.median(v) for k, v in rows.items()}
        print(json.dumps({"tenants": n, "repeat": args.repeat, "runs": rows, "load": lo}, indent=2))
        print(f"\nN = {n} (median of {args.repeat}; each run: bare and ours side by side)")
        print(f"  bare Miniflare ready           {median['bare_ready_ms']:8.0f} ms")
        print(
            f"  local edge, workerd ready      {median['ours_cold_runtime_ready_ms']:8.0f} ms   "
            f"ratio {median['ours_cold_runtime_ready_ms'] / median['bare_ready_ms']:.2f}x"
        )
        print(
            f"  local edge, cold serving       {median['ours_cold_ready_ms']:8.0f} ms   "
            f"ratio {median['ours_cold_ready_ms'] / median['bare_ready_ms']:.2f}x  (KV seeded, migrations applied)"
        )
        print(
            f"  local edge, warm serving       {median['ours_warm_ready_ms']:8.0f} ms   "
            f"ratio {median['ours_warm_ready_ms'] / median['bare_ready_ms']:.2f}x  (restart, data persisted)"
        )
        print(
            f"  `local up` end to end, cold    {median['ours_prepare_s'] + median['ours_cold_up_s']:8.1f} s    "
            f"(render + decrypt + seal {median['ours_prepare_s']:.1f} s)"
        )
        print(
            f"  memory per extra worker        bare {median['bare_mib_per_worker']:.1f} MiB, "
            f"local edge {median['ours_mib_per_tenant']:.1f} MiB per tenant "
            f"({median['ours_rss_1']:.0f} MiB with 1, {median['ours_rss']:.0f} MiB with {n})"
        )
        print(
            f"  requests/s across {int(lo['hosts'])} hostnames  {lo['rps']:8.0f}   "
            f"({args.clients} keep-alive clients, {args.seconds:.0f} s, {int(lo['errors'])} non-200)"
        )


if __name__ == "__main__":
    main()
