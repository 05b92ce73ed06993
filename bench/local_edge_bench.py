"""Local edge benchmark: what a user waits for and what the machine holds, against bare Miniflare.

    .venv/bin/python -m bench.local_edge_bench [--sizes 50,200] [--repeat 3] [--json]
    .venv/bin/python -m bench.local_edge_bench --isolation dispatch --tenants 200 [--repeat 3] --json

Workers mode (default): for each size N, each repetition runs side by side, in a rotating order,
- `ours`: the whole `python -m orchestrator local up` of N tenants on a fresh state directory
  (Python start-up, render, decrypt every stack's secrets with its own salt, node, workerd, KV
  seeding, D1 migrations), with the derived-key cache as a user has it after a first run, then
  `ours_restart`: the same again on that state directory (data kept, as every later `local up`);
- `ours_first`: the same with the key cache off (CLAWDBOT_KEY_CACHE=off): every key derived;
- `bare`: a whole node process starting bare Miniflare with N trivial workers, own KV + D1 each;
and the same three with 1 tenant, for memory per tenant (workerd + node runner RSS growth).

`--json` prints one object; its keys are documented in README.md ("Benchmarks"). `--isolation
dispatch` compares dispatch mode with workers mode instead (bench/dispatch_compare.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.local_edge_run import MIB, Fleet, bare_up, down, fleet, local_up, min_median

TARGETS = {"ratio_e2e_50": 2.0, "ratio_e2e_200": 2.5, "mib_per_tenant": 8.0}
KEY_CACHE_OFF = {"CLAWDBOT_KEY_CACHE": "off"}
KEY_CACHE_BENCH = {"CLAWDBOT_KEY_CACHE": "7200"}
"""Long enough that the key cache the warm-up fills outlasts every repetition (default 900 s)."""
Say = Callable[[str], None]


def _ours(fleet_: Fleet, state: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    up = local_up(fleet_, state, env)
    try:
        return up.seconds, float(up.rss)
    finally:
        down(state)


def measure(
    sizes: list[int], root: Path, repeat: int, say: Say, first_run_sizes: set[int] | None = None
) -> dict[str, list[float]]:
    """Every side's seconds and RSS per size and repetition (interleaved, rotating order)."""
    fleets = {n: fleet(n, root / f"fleet-{n}") for n in {*sizes, 1}}
    runs: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        runs.setdefault(key, []).append(value)

    # Untimed warm-up of both sides (page cache, node's compile cache) and of the key cache.
    for n in fleets:
        _ours(fleets[n], root / f"warm-{n}", KEY_CACHE_BENCH)
        bare_up(n, root / f"bare-warm-{n}")

    def side_run(side: str, n: int, work: Path) -> dict[str, tuple[float, float]]:
        if side == "bare":
            return {"bare": _bare(n, work)}
        if side == "ours_first":
            return {"ours_first": _ours(fleets[n], work, KEY_CACHE_OFF)}
        # A fresh state directory (KV seeded, migrations applied), then a restart keeping its data.
        return {
            "ours": _ours(fleets[n], work, KEY_CACHE_BENCH),
            "ours_restart": _ours(fleets[n], work, KEY_CACHE_BENCH),
        }

    sides = ("bare", "ours", "ours_first")
    for rep in range(repeat):
        shift = rep % len(sides)
        for n in (*sizes, 1):
            for side in sides[shift:] + sides[:shift]:
                if side == "ours_first" and first_run_sizes is not None and n not in first_run_sizes | {1}:
                    continue
                for name, (seconds, rss) in side_run(side, n, root / f"{side}-{n}-{rep}").items():
                    add(f"{name}_{n}_s", seconds)
                    add(f"{name}_{n}_rss_mib", rss / MIB)
                    say(f"rep {rep + 1}/{repeat} N={n} {name}: {seconds:.2f} s, {rss / MIB:.0f} MiB")
    return runs


def _bare(n: int, work: Path) -> tuple[float, float]:
    result = bare_up(n, work)
    return result.seconds, float(result.rss)


def _ratios(runs: dict[str, list[float]], top: str, bottom: str) -> list[float]:
    return [a / b for a, b in zip(runs[top], runs[bottom], strict=True)]


def summarise(runs: dict[str, list[float]], sizes: list[int], repeat: int) -> dict[str, Any]:
    biggest = max(sizes)
    per_rep: dict[str, list[float]] = {}
    for n in sizes:
        per_rep[f"ratio_e2e_{n}"] = _ratios(runs, f"ours_{n}_s", f"bare_{n}_s")
        per_rep[f"ratio_e2e_{n}_restart"] = _ratios(runs, f"ours_restart_{n}_s", f"bare_{n}_s")
        if f"ours_first_{n}_s" in runs:
            per_rep[f"ratio_e2e_{n}_first_run"] = _ratios(runs, f"ours_first_{n}_s", f"bare_{n}_s")
    for side, key in (("ours", "mib_per_tenant"), ("bare", "bare_mib_per_worker")):
        per_rep[key] = [
            (big - one) / (biggest - 1)
            for big, one in zip(runs[f"{side}_{biggest}_rss_mib"], runs[f"{side}_1_rss_mib"], strict=True)
        ]
    figures = {key: round(statistics.median(values), 3) for key, values in per_rep.items()}
    return {
        "bench": "local_edge_bench",
        "isolation": "workers",
        "sizes": sizes,
        "repeat": repeat,
        "mib_per_tenant_at": biggest,
        **figures,
        "targets": {k: v for k, v in TARGETS.items() if k in figures},
        "met": {k: figures[k] <= v for k, v in TARGETS.items() if k in figures},
        "per_rep": {k: min_median(v) for k, v in per_rep.items()},
        "runs": {k: min_median(v) for k, v in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,200", help="workers mode: tenant counts, comma-separated")
    parser.add_argument(
        "--first-run-sizes",
        default=None,
        help="workers mode: sizes that also run `ours_first` (key cache off; every key derived, ~0.25 s of CPU "
        "per stack); default every size",
    )
    parser.add_argument("--tenants", type=int, default=200, help="dispatch comparison: tenant count")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--isolation",
        choices=["workers", "dispatch"],
        default="workers",
        help="dispatch: whole `local up` and GET / latency through the dispatcher, each ÷ workers mode at the same N",
    )
    parser.add_argument("--requests", type=int, default=300, help="dispatch comparison: requests per run")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args()
    say: Say = (lambda _m: None) if args.json else print
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.isolation == "dispatch":
        from bench.dispatch_compare import compare

        if args.tenants < 2:
            parser.error("--tenants must be at least 2 (memory per tenant compares N with 1)")
        with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
            result = compare(args.tenants, Path(tmp), args.repeat, args.requests, say)
    else:
        try:
            sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
        except ValueError:
            parser.error("--sizes takes comma-separated integers, e.g. 50,200")
        if not sizes or min(sizes) < 2:
            parser.error("--sizes must be at least 2 (memory per tenant compares N with 1)")
        first = None
        if args.first_run_sizes is not None:
            try:
                first = {int(s) for s in args.first_run_sizes.split(",") if s.strip()}
            except ValueError:
                parser.error("--first-run-sizes takes comma-separated integers, e.g. 50")
        with tempfile.TemporaryDirectory(prefix="local-edge-bench-") as tmp:
            result = summarise(measure(sizes, Path(tmp), args.repeat, say, first), sizes, args.repeat)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
