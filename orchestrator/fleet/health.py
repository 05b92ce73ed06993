"""Poll a tenant edge's `/_edge/health` (docs/contract.md) for the rollout gate and `health` command.

The VPS pulls; the edge never calls in. The verdict on an answer is `orchestrator.core.health`.
`degraded` right after a deploy is normal for a while (KV is eventually consistent, ~60 s), so the
gate keeps polling until its deadline before failing.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from orchestrator.core.health import MAX_BODY, GateResult, HealthCheck, HealthTarget, check_answer

GATE_TIMEOUT_S = 120.0
"""How long a wave may take to turn healthy (`up --gate-timeout`)."""
GATE_INTERVAL_S = 5.0
"""Pause between two probes of a target that is not healthy yet."""


def probe(target: HealthTarget, timeout_s: float = 5.0) -> HealthCheck:
    """One GET of the health endpoint, judged against the target."""
    if not target.url.startswith(("http://", "https://")):
        return HealthCheck(target, "invalid", f"health URL {target.url!r} is not http(s)")
    request = urllib.request.Request(target.url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(MAX_BODY + 1)
            status = response.status
    except urllib.error.HTTPError as exc:
        return HealthCheck(target, "unreachable", f"HTTP {exc.code} from {target.url}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return HealthCheck(target, "unreachable", f"cannot reach {target.url}: {reason}")
    return check_answer(target, status, body)


def wait_healthy(
    target: HealthTarget,
    *,
    timeout_s: float,
    interval_s: float,
    probe_timeout_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
) -> HealthCheck:
    """Poll until the target is ok or the deadline passes; returns the last check (at least one probe).

    `deadline` (on `clock`) overrides `timeout_s`: the gate passes one shared by the whole wave.
    """
    if deadline is None:
        deadline = clock() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        check = probe(target, probe_timeout_s)
        # A tenant answering for someone else, or garbage, will not fix itself by waiting.
        if check.ok or check.verdict in ("wrong-tenant", "invalid") or clock() + interval_s > deadline:
            return HealthCheck(check.target, check.verdict, check.reason, check.doc, attempts)
        sleep(interval_s)


def gate(
    targets: Sequence[HealthTarget],
    *,
    timeout_s: float = GATE_TIMEOUT_S,
    interval_s: float = GATE_INTERVAL_S,
    max_parallel: int = 8,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> GateResult:
    """Poll every target of a wave in parallel; they share one deadline, `timeout_s` from now.

    With more targets than `max_parallel`, a target polled late gets what is left of the deadline
    (at least one probe), so the gate never takes longer than `timeout_s` plus one probe round.
    """
    if not targets:
        return GateResult(())
    deadline = clock() + timeout_s

    def poll(target: HealthTarget) -> HealthCheck:
        return wait_healthy(
            target, timeout_s=timeout_s, interval_s=interval_s, clock=clock, sleep=sleep, deadline=deadline
        )

    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(targets)))) as pool:
        return GateResult(tuple(pool.map(poll, targets)))
