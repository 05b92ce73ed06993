"""The picture the page draws, kept fresh: a background round every `interval_s`, diffed, published.

A round reads what `status` reads (deployed records, drift records, one probe of each deployed
health URL), probes the local edge instead when the health mode says so (as `health` does), and
reads the timers. Only tenants whose view changed are published, so 200 quiet tenants cost the
page nothing. Rounds never overlap; `poke` asks for one now (after a job, say).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.server.events import EventHub
from orchestrator.server.library import EdgeError, Library, report_line, tenant_of
from orchestrator.server.scheduler import read_timers
from orchestrator.server.schemas import SchedulerDoc, StatusRow, TenantView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    tenants: tuple[TenantView, ...] = ()
    rows: tuple[StatusRow, ...] = ()
    ok: bool = False
    checked_at: str | None = None
    mode: str = "remote"
    scheduler: SchedulerDoc = field(
        default_factory=lambda: SchedulerDoc(available=False, reason="not read yet", timers=[])
    )


def _local_health(library: Library) -> dict[str, dict[str, Any]]:
    _, checks = library.health([], "local")
    return {c["tenant"]: c for c in checks}


class Watcher:
    def __init__(
        self,
        library: Library,
        hub: EventHub,
        *,
        interval_s: float,
        health_mode: str,
        scheduler: Callable[[], SchedulerDoc] = read_timers,
    ) -> None:
        self.library = library
        self.hub = hub
        self.interval_s = interval_s
        self.health_mode = health_mode
        self.scheduler = scheduler
        self.snapshot = Snapshot()
        self.rounds = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._round_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def poke(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # a bad round must not stop the page from ever updating again
                log.exception("watcher round failed")
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def refresh(self) -> Snapshot:
        with self._round_lock:
            previous = self.snapshot
            current = self._round()
            self.snapshot = current
            self.rounds += 1
        self._publish(previous, current)
        return current

    def _round(self) -> Snapshot:
        lib = self.library
        stacks = lib.stacks()
        rows, probes = lib.status_rows(stacks, probe=True)
        mode = lib.health_mode(self.health_mode)
        local: dict[str, dict[str, Any]] = {}
        local_error = None
        if mode == "local":
            try:
                local = _local_health(lib)
            except EdgeError as exc:
                local_error = report_line(exc, 200)
        views = []
        for stack, row in zip(stacks, rows, strict=True):
            tenant = tenant_of(stack)
            view: dict[str, Any] = {"tenant": tenant, "stack": stack, **lib.summary(stack), **row}
            if mode == "local":
                check = local.get(tenant)
                doc = (check or {}).get("health") or {}
                view["health"] = check["verdict"] if check else None
                view["health_reason"] = check["reason"] if check else (local_error or "not running in the local edge")
                view["served_bundle"] = (doc.get("script") or {}).get("version")
                view["served_config_version"] = (doc.get("config") or {}).get("version")
            elif tenant in probes:
                probe = probes[tenant]
                view["health_reason"] = probe.reason
                if probe.doc is not None:
                    view["served_bundle"] = probe.doc.script.version
                    view["served_config_version"] = probe.doc.config.version
            else:
                view["health_reason"] = "never deployed by the fleet: nothing to probe"
            views.append(TenantView.model_validate(view))
        status_rows = tuple(StatusRow.model_validate(r) for r in rows)
        return Snapshot(
            tenants=tuple(views),
            rows=status_rows,
            ok=lib.status_ok(rows),
            checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
            mode=mode,
            scheduler=self.scheduler(),
        )

    def _publish(self, previous: Snapshot, current: Snapshot) -> None:
        before = {t.tenant: t for t in previous.tenants}
        after = {t.tenant: t for t in current.tenants}
        if set(before) != set(after) and previous.checked_at is not None:
            self.hub.publish("resync", {})  # tenants added or removed: the page redraws the picture
            return
        for tenant, view in after.items():
            if before.get(tenant) != view:
                self.hub.publish("tenant", view.model_dump(mode="json"))
        if previous.scheduler != current.scheduler:
            self.hub.publish("scheduler", current.scheduler.model_dump(mode="json"))
        if previous.ok != current.ok:
            self.hub.publish("status", {"ok": current.ok, "checked_at": current.checked_at})
