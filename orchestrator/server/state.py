"""What one running control room holds: its settings, tokens, jobs, watcher and event hub."""

from __future__ import annotations

import importlib.metadata
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.server.errors import NotFound
from orchestrator.server.events import EventHub
from orchestrator.server.jobs import JobManager
from orchestrator.server.library import ConfigError, Library, tenant_of
from orchestrator.server.schemas import JobList, Overview, StatusDoc, TenantList, TenantView
from orchestrator.server.security import Guard, RateLimiter
from orchestrator.server.serve import ServeConfig
from orchestrator.server.tokens import TokenStore
from orchestrator.server.watcher import Snapshot, Watcher


def _version() -> str:
    try:
        return importlib.metadata.version("clawdbot-edge")
    except importlib.metadata.PackageNotFoundError:
        return "0.1.0 (checkout)"


def custody(path: Path) -> str:
    """How the state passphrase is kept, from the file's metadata only (it is never opened)."""
    try:
        info = os.stat(path)
    except OSError:
        return f"passphrase file {path} is missing"
    mode = stat.S_IMODE(info.st_mode)
    verdict = "owner only" if not mode & 0o077 else "READABLE BY OTHERS"
    return f"passphrase in {path} ({mode:04o}, {verdict}); never sent to Cloudflare or to this page"


@dataclass
class AppState:
    library: Library
    config: ServeConfig
    tokens: TokenStore
    guard: Guard
    hub: EventHub
    jobs: JobManager
    watcher: Watcher
    version: str = field(default_factory=_version)
    _status_cache: tuple[Snapshot | None, bytes] = (None, b"")

    @classmethod
    def build(cls, library: Library, config: ServeConfig, hub: EventHub | None = None) -> AppState:
        tokens = TokenStore(library.settings.tokens_file)
        guard = Guard(tokens, RateLimiter(config.rate_per_minute, config.rate_burst))
        hub = hub or EventHub()
        watcher = Watcher(library, hub, interval_s=config.watch_interval_s, health_mode=config.health_mode)
        jobs = JobManager(library, hub, on_finish=watcher.poke)
        return cls(library, config, tokens, guard, hub, jobs, watcher)

    # -- views --------------------------------------------------------------------------------

    def tenant_list(self) -> TenantList:
        snapshot = self.watcher.snapshot
        busy = self.jobs.busy()
        views = [t.model_copy(update={"job": busy.get(t.stack)}) if t.stack in busy else t for t in snapshot.tenants]
        return TenantList(tenants=views, checked_at=snapshot.checked_at)

    def tenant(self, tenant: str) -> TenantView:
        for view in self.tenant_list().tenants:
            if view.tenant == tenant:
                return view
        try:
            self.library.select([tenant])
        except ConfigError as exc:
            raise NotFound(str(exc)) from None  # the CLI's message for an unknown tenant
        raise NotFound(f"tenant {tenant!r} is registered but not in the picture yet; try again in a moment")

    @staticmethod
    def search_text(view: TenantView) -> str:
        return " ".join([view.tenant, view.zone or "", *view.routes, *view.custom_domains, view.health or ""]).lower()

    def status_bytes(self) -> tuple[bytes, str | None]:
        """`status --json` of the last round, encoded once per round (the API's hottest answer)."""
        snapshot = self.watcher.snapshot
        cached, body = self._status_cache
        if cached is not snapshot:
            body = StatusDoc(ok=snapshot.ok, tenants=list(snapshot.rows)).model_dump_json().encode()
            self._status_cache = (snapshot, body)
        return body, snapshot.checked_at

    def overview(self) -> Overview:
        settings = self.library.settings
        return Overview(
            project=self.library.project,
            version=self.version,
            state_backend=settings.backend_url,
            passphrase_custody=custody(settings.passphrase_file),
            tenants=self.tenant_list(),
            scheduler=self.watcher.snapshot.scheduler,
            jobs=JobList(jobs=[j.view() for j in self.jobs.list()[:20]]),
        )

    def tenant_names(self) -> list[str]:
        return [tenant_of(s) for s in self.library.stacks()]
