"""The health answer of a tenant edge (docs/contract.md, `/_edge/health`) and the verdict on it.

A tenant passes when its Worker answers `status: ok` for the right tenant, serves the bundle we
just deployed (`script.version == bundle_hash`) and holds at least the config version we
deployed. Pure: the rollout gate and `health` (`orchestrator.fleet.health`, over HTTPS) and the
local edge (`orchestrator.local_edge.ops`, through workerd) fetch the answer; this judges it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_BODY = 64 * 1024
"""A health document is small; anything larger is not one."""

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
