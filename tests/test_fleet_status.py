"""The fleet's own rules, out of the CLI: the status verdict (fleet/status.py), the preflight (fleet/preflight.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from orchestrator.core.health import GateResult, HealthCheck, HealthTarget, Verdict
from orchestrator.fleet.ports import DeployedRecord, DriftRecord, HealthGate, Operation
from orchestrator.fleet.preflight import clearance
from orchestrator.fleet.status import fleet_status

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _record(stack: str, url: str | None = "https://x/_edge/health") -> DeployedRecord:
    return DeployedRecord(
        stack=stack, bundle_hash="b" * 64, config_version=1, health_url=url, config_digest="c", program_digest="p",
        render_digest="r", state_fingerprint=None, updated_at=WHEN,
    )  # fmt: skip


@dataclass
class Store:
    records: dict[str, DeployedRecord] = field(default_factory=dict)
    drifts: dict[str, DriftRecord] = field(default_factory=dict)

    def get(self, stack: str) -> DeployedRecord | None:
        return self.records.get(stack)

    def drift(self, stack: str) -> DriftRecord | None:
        return self.drifts.get(stack)

    def state_changed(self, record: DeployedRecord) -> bool:
        return False

    def put(self, record: DeployedRecord) -> DeployedRecord:
        return record

    def invalidate(self, stack: str) -> None: ...

    def mark_good(self, stack: str) -> None: ...

    def put_many(self, records: Sequence[DeployedRecord], *, good: bool = False) -> None: ...

    def last_good(self, stack: str) -> DeployedRecord | None:
        return None

    def put_drift(self, stack: str, report: object) -> None: ...

    def forget(self, stack: str) -> None: ...


def _gate(verdicts: dict[str, Verdict], probed: list[str]) -> HealthGate:
    def gate(targets: Sequence[HealthTarget]) -> GateResult:
        probed.extend(t.tenant for t in targets)
        return GateResult(tuple(HealthCheck(t, verdicts.get(t.tenant, "ok"), "") for t in targets))

    return gate


def test_a_deployed_clean_healthy_fleet_is_ok() -> None:
    store = Store({"prod.a": _record("prod.a"), "prod.b": _record("prod.b", url=None)})
    probed: list[str] = []
    status = fleet_status(store, ["prod.a", "prod.b"], _gate({}, probed))
    assert status.ok and probed == ["a"]  # no health URL: nothing to probe, not a failure
    assert [t.health for t in status.tenants] == ["ok", None]
    assert status.as_dict()["tenants"][0]["last_update"] == "2026-11-30T12:00:00+00:00"


@pytest.mark.parametrize("why", ["never deployed", "drifted", "unhealthy"])
def test_any_one_tenant_makes_the_fleet_not_ok(why: str) -> None:
    store = Store({"prod.a": _record("prod.a")})
    verdicts: dict[str, Verdict] = {}
    if why != "never deployed":
        store.records["prod.b"] = _record("prod.b")
    if why == "drifted":
        store.drifts["prod.b"] = DriftRecord(checked_at=WHEN, drifted=True, summary="1 change")
    if why == "unhealthy":
        verdicts["b"] = "wrong-version"
    status = fleet_status(store, ["prod.a", "prod.b"], _gate(verdicts, []))
    assert not status.ok
    assert [t.tenant for t in status.tenants if not t.ok] == ["b"]


def test_status_without_probing_never_calls_the_gate() -> None:
    store = Store({"prod.a": _record("prod.a")}, {"prod.a": DriftRecord(checked_at=WHEN, drifted=False, summary="")})
    status = fleet_status(store, ["prod.a"], None)
    assert status.ok and status.tenants[0].health is None and status.tenants[0].drift == "clean"


@dataclass(frozen=True)
class Debris:
    blocked: bool = False
    pending: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()


@pytest.mark.parametrize("operation", list(Operation))
def test_a_live_lock_blocks_every_operation(operation: Operation) -> None:
    found = clearance(Debris(blocked=True, advice=("wait for pid 7",)), operation)
    assert found.blocked == "wait for pid 7" and found.advice == ("wait for pid 7",)


@pytest.mark.parametrize("operation", list(Operation))
def test_pending_operations_block_only_an_up(operation: Operation) -> None:
    found = clearance(Debris(pending=("create",), advice=("refresh first",)), operation)
    if operation is Operation.UP:
        assert found.blocked and found.blocked.startswith("1 operations of an interrupted update are pending")
    else:
        assert found.blocked is None and found.advice == ("refresh first",)
