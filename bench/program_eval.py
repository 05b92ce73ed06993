"""Evaluate the Pulumi program for N tenants: one warm process vs one fresh process per tenant.

Both sides run the real program under the offline mocks on generated tenant stacks. The sides are
interleaved stack by stack: for each stack, one fresh process evaluates it (what a
process-per-stack fleet pays: interpreter start, the pulumi/pulumi_cloudflare imports, reading its
own stack file and nothing else), then a long-lived warm process evaluates the same stack on
request. Each round starts a new warm process; the report is {min, median} over rounds of each
round's median. Usage:

    .venv/bin/python bench/program_eval.py --tenants 50 [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""A user's processes find their modules' bytecode cached: so do ours (an untimed first run writes it)."""

from orchestrator.core.names import tenant_stack  # noqa: E402
from orchestrator.ops.scratch import ScratchProject, synthetic_tenant  # noqa: E402

ONE_STACK = """
import sys
from pathlib import Path
from orchestrator.config.tenant_config import TENANT_KEY, read_stack_config
from orchestrator.offline.cloudflare_mock import FakeAccount
from orchestrator.offline.session import run_offline

def evaluate(project, stack):
    # Only this stack's file: the account knows its zone, as Cloudflare would.
    zone = read_stack_config(project, stack)[TENANT_KEY]["zone"]
    assert run_offline(project, stack, account=FakeAccount(zones={zone["id"]: zone["name"]})).resources
"""

COLD = ONE_STACK + "\nevaluate(Path(sys.argv[1]), sys.argv[2])\n"

WARM = (
    "import time\nt0 = time.perf_counter()\n"
    + ONE_STACK
    + """
print(f"ready {time.perf_counter() - t0}", flush=True)
project = Path(sys.argv[1])
for line in sys.stdin:
    t = time.perf_counter()
    evaluate(project, line.strip())
    print(f"done {time.perf_counter() - t}", flush=True)
"""
)


def make_project(root: Path, tenants: int) -> list[str]:
    """N tenants of 2 routes, 1 custom domain, 1 cron and 2 secrets each."""
    project = ScratchProject(root, secrets.token_urlsafe(16), source=REPO)
    stacks = []
    for index in range(tenants):
        tenant = synthetic_tenant(index, secret_names=("WEBHOOK_SECRET", "STRIPE_KEY"))
        zone = tenant["zone"]["name"]
        tenant["routes"] = [f"shop.{zone}/*", f"api.{zone}/v1/*"]
        tenant["crons"] = ["*/15 * * * *"]
        project.add_tenant(tenant)
        stacks.append(tenant_stack(tenant["id"]))
    return stacks


def cold(project: Path, stack: str) -> float:
    """Seconds of one whole fresh process evaluating `stack`."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", COLD, str(project), stack], cwd=REPO, env=ENV, check=True, capture_output=True
    )
    return time.perf_counter() - t0


class Warm:
    """One process that imports once and evaluates stacks on request."""

    def __init__(self, project: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WARM, str(project)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.import_s = self._read("ready")

    def _read(self, tag: str) -> float:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if not line or line[0] != tag:
            raise SystemExit(f"warm process: expected {tag!r}, got {line!r} (exit {self.process.poll()})")
        return float(line[1])

    def evaluate(self, stack: str) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(stack + "\n")
        self.process.stdin.flush()
        return self._read("done")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def summary(values: list[float], digits: int = 1) -> dict[str, float]:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold-sample", type=int, default=None, help="stacks per round (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        stacks = make_project(project, args.tenants)
        sample = stacks[: args.cold_sample or len(stacks)]
        cold(project, sample[0])  # untimed: writes the bytecode caches a user's installation has
        for number in range(args.rounds):
            warm = Warm(project)
            try:
                colds, warms = [], []
                for index, stack in enumerate(sample):
                    # Alternate which side goes first, so neither always runs on a cache the other warmed.
                    if (index + number) % 2:
                        colds.append(cold(project, stack))
                        warms.append(warm.evaluate(stack))
                    else:
                        warms.append(warm.evaluate(stack))
                        colds.append(cold(project, stack))
            finally:
                warm.close()
            cold_ms, warm_ms = statistics.median(colds) * 1000, statistics.median(warms) * 1000
            n = len(sample)
            for key, value in {
                "warm_ms_per_tenant": warm_ms,
                "cold_ms_per_tenant": cold_ms,
                "warm_import_s_once": warm.import_s,
                "ratio_cold_over_warm": cold_ms / warm_ms,
                "ratio_including_warm_import": cold_ms * n / (warm_ms * n + warm.import_s * 1000),
            }.items():
                rows.setdefault(key, []).append(value)
    result: dict[str, object] = {key: summary(values, 2 if "_s_" in key else 1) for key, values in rows.items()}
    result |= {"tenants": args.tenants, "stacks_per_round": len(sample), "rounds": args.rounds}
    if args.json:
        print(json.dumps(result))
    else:
        for key, shown in result.items():
            print(f"{key:30} {shown}")


if __name__ == "__main__":
    main()
