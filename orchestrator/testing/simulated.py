"""A simulated `StackExecutor`: drives the tests, the benchmark and rollout rehearsals.

It models latency, API traffic and failures; it never stands for a real deployment having happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core import outputs as output_keys
from orchestrator.core.drift import DriftReport
from orchestrator.core.errors import EdgeError
from orchestrator.core.names import tenant_of
from orchestrator.fleet.ports import (
    KeptResource,
    Operation,
    OpRequest,
    StackOutcome,
)


@dataclass
class SimulatedExecutor:
    """A `StackExecutor` with a latency model and failure injection."""

    latency_s: Callable[[str, Operation], float] = lambda stack, op: 0.0
    """Engine time of one operation, outside API calls."""
    api_calls: int = 0
    """Cloudflare API requests per operation (each goes through `call_api`)."""
    api_parallel: int = 4
    """Requests in flight per stack (the engine's resource parallelism)."""
    call_api: Callable[[str, int], None] | None = None
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    """Per stack: exceptions raised by successive attempts, before attempts succeed."""
    rollback_failures: set[str] = field(default_factory=set)
    rollback_bundles: dict[str, str] = field(default_factory=dict)
    """bundle_hash output of a rollback per stack (default: as for an up)."""
    rollback_versions: dict[str, int | None] = field(default_factory=dict)
    """The config_version each rollback was asked to re-issue the last good file under (None: as it was)."""
    kept: dict[str, tuple[KeptResource, ...]] = field(default_factory=dict)
    """Protected resources a destroy leaves per stack."""
    bundles: dict[str, str] = field(default_factory=dict)
    """bundle_hash output per stack (default `sim-<stack>`)."""
    config_versions: dict[str, int] = field(default_factory=dict)
    """config_version output per stack (default 1)."""
    health_base: str | None = None
    """When set, `health_url` is `<health_base>/<tenant>/_edge/health`."""
    drift: dict[str, DriftReport] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    calls: list[tuple[str, str]] = field(default_factory=list)
    prepared: int = 0
    """How often `prepare` ran (once per fleet run, before any stack)."""
    max_in_flight: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, request: OpRequest) -> StackOutcome:
        with self._lock:
            self.calls.append((request.stack, request.operation.value))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            queued = self.failures.get(request.stack)
            failure = queued.pop(0) if queued else None
        try:
            self._work(request.stack, request.operation)
            if failure is not None:
                raise failure
            return self._outcome(request)
        finally:
            with self._lock:
                self._in_flight -= 1

    def prepare(self) -> None:
        with self._lock:
            self.prepared += 1

    def rollback(self, stack: str, config_version: int | None) -> StackOutcome:
        with self._lock:
            self.calls.append((stack, "rollback"))
            self.rollback_versions[stack] = config_version
        self._work(stack, Operation.UP)
        if stack in self.rollback_failures:
            raise EdgeError(f"stack {stack}: simulated rollback failure")
        outputs = self._outputs(stack, self.rollback_bundles.get(stack))
        if config_version is not None:
            outputs[output_keys.CONFIG_VERSION] = config_version
        return StackOutcome(stack, Operation.UP, {"update": 1}, outputs)

    def _outputs(self, stack: str, bundle_hash: str | None = None) -> dict[str, Any]:
        outs: dict[str, Any] = {
            output_keys.BUNDLE_HASH: bundle_hash or self.bundles.get(stack, f"sim-{stack}"),
            output_keys.CONFIG_VERSION: self.config_versions.get(stack, 1),
        }
        if self.health_base:
            outs[output_keys.HEALTH_URL] = f"{self.health_base}/{tenant_of(stack)}/_edge/health"
        return outs

    def outputs(self, stack: str) -> dict[str, Any]:
        return self._outputs(stack)

    def _work(self, stack: str, op: Operation) -> None:
        latency = self.latency_s(stack, op)
        if latency > 0:
            self.sleep(latency)
        if self.call_api is not None and self.api_calls:
            call = self.call_api
            with ThreadPoolExecutor(max_workers=self.api_parallel) as pool:
                list(pool.map(lambda i: call(stack, i), range(self.api_calls)))

    def _outcome(self, request: OpRequest) -> StackOutcome:
        stack, op = request.stack, request.operation
        if op is Operation.UP:
            return StackOutcome(stack, op, {"update": 1}, self._outputs(stack))
        if op is Operation.DESTROY:
            kept = self.kept.get(stack, ())
            advice = tuple(f"remove {k.urn} deliberately" for k in kept)
            return StackOutcome(stack, op, {"delete": 5}, {}, kept=kept, advice=advice)
        drift = self.drift.get(stack, DriftReport()) if request.drift_check else None
        return StackOutcome(stack, op, {"same": 5}, {}, drift)
