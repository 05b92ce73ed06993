"""A state backup as every door makes it: `backup create` and the cluster's backup schedule.

The backup repository in the configured bucket (sealed under the backup passphrase, which must
differ from the state passphrase), the fleet lease held while the state is read (waiting for a
running fleet operation on this node), the state and stack files, the last-backup marker that
`doctor` reads, and retention afterwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from orchestrator.backup.custody import ensure_distinct
from orchestrator.backup.errors import BackupError
from orchestrator.backup.marker import LastBackup, write_marker
from orchestrator.backup.repository import BackupRepository, Manifest, PruneResult, Retention
from orchestrator.backup.sources import state_sources
from orchestrator.backup.store import S3Store
from orchestrator.config.secrets_provider import read_passphrase_file
from orchestrator.config.settings import Settings
from orchestrator.core.errors import FleetLockError
from orchestrator.engine.locks import fleet_lease
from orchestrator.fleet.audit import default_who

LEASE_POLL_S = 5.0


def repository(settings: Settings, escrow: bool, *, creating: bool = False) -> tuple[BackupRepository, str]:
    """The state (or escrow) backups in their bucket, and the bucket's name."""
    bucket = (settings.escrow_bucket or settings.r2_bucket) if escrow else settings.r2_bucket
    if not bucket:
        raise BackupError("no backup bucket configured: set CLAWDBOT_R2_BUCKET (and CLAWDBOT_R2_ENDPOINT)")
    store = S3Store(bucket, settings.r2_endpoint, settings.r2_region)
    passphrase = read_passphrase_file(settings.backup_passphrase_file)
    if creating:
        # Nothing new is sealed under the state passphrase; reading older backups stays possible.
        ensure_distinct(passphrase, settings.backup_passphrase_file, settings.passphrase_file)
    return BackupRepository(store, "escrow" if escrow else "state", passphrase.encode("utf-8")), bucket


@contextlib.contextmanager
def held_fleet_lease(settings: Settings, wait_s: float) -> Iterator[None]:
    """Hold the fleet lease (the one `up`/`drift` runs take), retrying for up to `wait_s` seconds."""
    deadline = time.monotonic() + wait_s
    with contextlib.ExitStack() as held:
        while True:
            try:
                held.enter_context(
                    fleet_lease(settings.fleet_lease_file, holder=default_who(), command="backup create")
                )
                break
            except FleetLockError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(min(LEASE_POLL_S, max(0.0, deadline - time.monotonic())))
        yield


def create_state_backup(
    settings: Settings, *, lease_wait: float, retention: Retention | None = None
) -> tuple[BackupRepository, str, Manifest, PruneResult | None]:
    """Back up the state and the stack files, record it for `doctor`, then prune by `retention`."""
    repo, bucket = repository(settings, False, creating=True)
    with held_fleet_lease(settings, lease_wait), state_sources(settings) as sources:
        manifest = repo.create(sources)
    write_marker(
        settings.backup_marker, LastBackup(backup_id=manifest.backup_id, created_at=manifest.created_at, bucket=bucket)
    )
    return repo, bucket, manifest, (repo.prune(retention) if retention is not None else None)
