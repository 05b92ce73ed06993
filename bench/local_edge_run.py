"""What the local edge benches time: whole processes, as a user starts them.

- `local_up`: `python -m orchestrator local up` in a fresh interpreter, timed from spawn to exit
  (Python start-up, rendering, decrypting each stack's secrets, node, workerd, KV seeding and
  migrations: the command returns once every tenant serves);
- `bare_up`: `node bench/local_edge_bare.mjs N` timed from spawn to its ready line (node start-up,
  Miniflare import, N workers each with its own KV and D1).

Memory is the RSS of every process the side keeps running: workerd plus the node runner (ours) or
the node process (bare). The scratch fleets give each stack its own encryption salt, as real
stacks have (`pulumi stack init` makes one per stack).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.secrets_provider import new_encryption_salt
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.model import Isolation
from orchestrator.local_edge import LocalEdge, RuntimeInfo
from orchestrator.local_edge import process as proc
from orchestrator.ops.scratch import ScratchProject, synthetic_tenant, write_passphrase_file

BARE = Path(__file__).with_name("local_edge_bare.mjs")
MIB = 2**20
UP_TIMEOUT_S = 1800
"""A 200-tenant bring-up on a loaded 2-core box takes minutes; the bench must not hit the CLI's default."""


@dataclass(frozen=True)
class Fleet:
    project: ScratchProject
    passphrase_file: Path


def fleet(n: int, root: Path, isolation: Isolation = "workers") -> Fleet:
    """A scratch project of n synthetic tenants, each stack with its own encryption salt."""
    passphrase_file = root / "passphrase"
    passphrase = write_passphrase_file(passphrase_file)
    scratch = ScratchProject(root / "project", passphrase, source=REPO_ROOT)
    if isolation != "workers":
        scratch.use_isolation(isolation)
    # One PBKDF2 per salt; hashlib releases the GIL, so the setup uses every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        salts = list(pool.map(lambda _i: new_encryption_salt(passphrase), range(n)))
    for index, salt in enumerate(salts):
        scratch.add_tenant(synthetic_tenant(index), salt=salt)
    return Fleet(scratch, passphrase_file)


def _env(fleet_: Fleet, state: Path, extra: Mapping[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWDBOT_", "PULUMI_"))}
    return {
        **clean,
        "CLAWDBOT_PROJECT_DIR": str(fleet_.project.root),
        "CLAWDBOT_LOCAL_EDGE_DIR": str(state),
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(fleet_.passphrase_file),
        "PYTHONPATH": str(REPO_ROOT),
        **extra,
    }


def rss_of(pids: Iterable[int]) -> int:
    return sum(proc.rss_bytes(p) or 0 for p in pids)


@dataclass(frozen=True)
class Up:
    seconds: float
    """Spawn of `local up` to its exit (the edge serves every tenant then)."""
    info: RuntimeInfo
    rss: int
    """workerd + node runner, bytes, half a second after ready."""


def local_up(fleet_: Fleet, state: Path, extra_env: Mapping[str, str] | None = None) -> Up:
    """One whole `local up` on a fresh or kept state directory; the edge is left running (call `down`)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "local", "up", "--port", "0", "--timeout", str(UP_TIMEOUT_S)],
        env=_env(fleet_, state, extra_env or {}),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"local up exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    edge = LocalEdge(state)
    info = edge.running()
    time.sleep(0.5)
    rss = rss_of([info.pid, *proc.workerd_pids(info.pid, state)])
    return Up(seconds, info, rss)


def down(state: Path) -> None:
    LocalEdge(state).down()


@dataclass(frozen=True)
class Bare:
    seconds: float
    rss: int


def bare_up(n: int, work: Path) -> Bare:
    """Bare Miniflare with n workers: spawn of node to its ready line; RSS of node + workerd."""
    started = time.perf_counter()
    child = subprocess.Popen(
        ["node", str(BARE), str(n), str(work)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        line = child.stdout.readline()
        seconds = time.perf_counter() - started
        if not line:
            raise RuntimeError(f"bare Miniflare with {n} workers did not start (exit {child.wait()})")
        json.loads(line)
        time.sleep(0.5)
        rss = rss_of([child.pid, *proc.workerd_pids(child.pid)])
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    return Bare(seconds, rss)


def min_median(values: list[float], digits: int = 3) -> dict[str, float]:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits)}
