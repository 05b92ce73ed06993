"""Poll a tenant edge's `/_edge/health` (docs/contract.md) for the rollout gate and `health` command.

The VPS pulls; the edge never calls in. A tenant passes when its Worker answers `status: ok` for the
right tenant, serves the bundle we just deployed (`script.version == bundle_hash`) and holds at least
the config version we deployed. `degraded` right after a deploy is normal for a while (KV is
eventually consistent, ~60 s), so the gate keeps polling until its deadline before failing.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_BODY = 64 * 1024
"""A health document is small; anything larger is not one."""
GATE_TIMEOUT_S = 120.0
"""How long a wave may take to turn healthy (`up --gate-timeout`)."""
GATE_INTERVAL_S = 5.0
"""Pause between two probes of a target that is not healthy yet."""

Verdict = Literal["ok", "degraded", "wrong-version", "wrong-tenant", "unreachable", "invalid"]


class HealthConfigState(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    source: Literal["kv", "cache", "embedded"]


class HealthScript(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str


class HealthD1(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    reachable: bool
    schema_state: Literal["current", "behind", "unknown"] = Field(alias="schema")


class HealthDoc(BaseModel):
    """The public part of the health answer (the token-gated `detail` is kept but not interpreted)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    tenant: str
    status: Literal["ok", "degraded"]
    config: HealthConfigState
    script: HealthScript
    d1: HealthD1
    time: str


@dataclass(frozen=True)
class HealthTarget:
    """What one tenant should be serving after a deploy."""

    stack: str
    tenant: str
    url: str
    """Full URL of the health endpoint (the stack's `health_url` output)."""
    bundle_hash: str | None = None
    config_version: int | None = None


@dataclass(frozen=True)
class HealthCheck:
    """The outcome of one probe (or the last probe of a poll)."""

    target: HealthTarget
    verdict: Verdict
    reason: str
    doc: HealthDoc | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def judge(target: HealthTarget, doc: HealthDoc) -> tuple[Verdict, str]:
    """The verdict on one health answer; the rollout gate and the local edge judge alike."""
    if doc.tenant != target.tenant:
        return "wrong-tenant", f"answers for tenant {doc.tenant!r}, expected {target.tenant!r}"
    if target.bundle_hash is not None and doc.script.version != target.bundle_hash:
        return "wrong-version", f"serves bundle {doc.script.version[:12]}, expected {target.bundle_hash[:12]}"
    if target.config_version is not None and doc.config.version < target.config_version:
        return "wrong-version", f"config version {doc.config.version}, expected >= {target.config_version}"
    if doc.status != "ok":
        where = f"config from {doc.config.source}, d1 schema {doc.d1.schema_state}"
        return "degraded", f"status degraded ({where})"
    return "ok", f"ok (config v{doc.config.version} from {doc.config.source})"


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


def check_answer(target: HealthTarget, status: int, body: bytes) -> HealthCheck:
    """Judge one health answer however it was fetched (over HTTPS, or from the local edge)."""
    if status != 200:
        return HealthCheck(target, "unreachable", f"HTTP {status} from {target.url}")
    if len(body) > MAX_BODY:
        too_big = f"health answer from {target.url} is larger than {MAX_BODY} bytes"
        return HealthCheck(target, "invalid", too_big)
    try:
        doc = HealthDoc.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return HealthCheck(target, "invalid", f"health answer from {target.url} is not JSON")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = f"health answer from {target.url}: field {where}: {first['msg']}"
        return HealthCheck(target, "invalid", reason)
    verdict, reason = judge(target, doc)
    return HealthCheck(target, verdict, reason, doc)


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


@dataclass(frozen=True)
class GateResult:
    """The health gate over one wave: passed only if every target is ok."""

    checks: tuple[HealthCheck, ...]

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> tuple[HealthCheck, ...]:
        return tuple(check for check in self.checks if not check.ok)


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
