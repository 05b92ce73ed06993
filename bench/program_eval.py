"""Evaluate the Pulumi program for N tenants: one warm process vs one fresh process per tenant.

Both sides run the real program under the offline mocks on generated tenant stacks, side by side
in one run; the fresh side pays what a process-per-stack fleet pays (interpreter start and the
pulumi/pulumi_cloudflare imports). Usage:

    .venv/bin/python bench/program_eval.py --tenants 50
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.core.names import tenant_stack  # noqa: E402
from orchestrator.ops.scratch import ScratchProject, synthetic_tenant  # noqa: E402

COLD_SNIPPET = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from orchestrator.offline.session import run_offline
run = run_offline(Path(sys.argv[1]), sys.argv[2])
assert run.resources
print(time.perf_counter() - t0)
"""


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


def warm(project: Path, stacks: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    from orchestrator.offline.session import project_account, run_offline

    imported = time.perf_counter()
    account = project_account(project)
    for stack in stacks:
        assert run_offline(project, stack, account=account).resources
    return imported - t0, time.perf_counter() - imported


def cold(project: Path, stacks: list[str]) -> list[float]:
    walls = []
    for stack in stacks:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", COLD_SNIPPET, str(project), stack], cwd=REPO, check=True, capture_output=True
        )
        walls.append(time.perf_counter() - t0)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--cold-sample", type=int, default=None, help="fresh processes to time (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        stacks = make_project(project, args.tenants)
        cold_walls = cold(project, stacks[: args.cold_sample or len(stacks)])
        import_s, warm_total = warm(project, stacks)
    warm_ms = warm_total / len(stacks) * 1000
    cold_ms = statistics.mean(cold_walls) * 1000
    result = {
        "tenants": args.tenants,
        "warm_ms_per_tenant": round(warm_ms, 1),
        "warm_import_s_once": round(import_s, 2),
        "cold_ms_per_tenant": round(cold_ms, 1),
        "cold_samples": len(cold_walls),
        "ratio_cold_over_warm": round(cold_ms / warm_ms, 1),
        "ratio_including_warm_import": round(cold_ms * len(stacks) / (warm_total * 1000 + import_s * 1000), 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:30} {value}")


if __name__ == "__main__":
    main()
