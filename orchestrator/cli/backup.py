"""`backup create|list|verify|restore|prune`: encrypted snapshots of the VPS state in R2.

Thin door over `orchestrator.backup`: reads settings and the backup passphrase file, prints one
line per result. Storage credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from orchestrator.backup.errors import BackupError
from orchestrator.backup.repository import BackupRepository, Manifest, PruneResult, Retention
from orchestrator.backup.sources import escrow_sources
from orchestrator.cli.errors import EdgeGroup
from orchestrator.config.settings import Settings
from orchestrator.fleet.audit import AuditLog
from orchestrator.ops.state_backup import create_state_backup, repository

P = ParamSpec("P")
R = TypeVar("R")


def _resolve_id(repo: BackupRepository, backup_id: str) -> str:
    """A backup id as given, or the newest complete backup for `latest`."""
    if backup_id != "latest":
        return backup_id
    newest = repo.latest()
    if newest is None:
        raise BackupError(f"there is no complete {repo.kind} backup in the bucket")
    return newest.backup_id


def _describe(manifest: Manifest) -> str:
    return f"{manifest.file_count} files, {manifest.total_size} bytes in {len(manifest.chunks)} object(s)"


escrow_option = click.option(
    "--escrow", is_flag=True, help="Act on the state-passphrase escrow instead of the state backups."
)
retention_options = [
    click.option("--keep-last", type=click.IntRange(min=1), help="Keep the newest N complete backups."),
    click.option("--keep-days", type=click.FloatRange(min=0, min_open=True), help="Keep backups younger than D days."),
]


def _with_retention(fn: Callable[P, R]) -> Callable[P, R]:
    for option in reversed(retention_options):
        fn = option(fn)
    return fn


@click.group(cls=EdgeGroup)
def backup() -> None:
    """Encrypted backups of the Pulumi state and stack configs to S3-compatible storage (R2).

    Everything is sealed with AES-256-GCM under a key derived (scrypt) from the backup passphrase
    in CLAWDBOT_BACKUP_PASSPHRASE_FILE (0600; keep a copy OFF this machine: without it no backup
    can be read). Bucket and endpoint: CLAWDBOT_R2_BUCKET, CLAWDBOT_R2_ENDPOINT; credentials:
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (an R2 API token's key pair).
    """


@backup.command()
@escrow_option
@_with_retention
@click.option(
    "--lease-wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait up to this long for a running fleet operation to release the fleet lease.",
)
def create(escrow: bool, keep_last: int | None, keep_days: float | None, lease_wait: float) -> None:
    """Snapshot the state directory and Pulumi.*.yaml files (or, with --escrow, the passphrase file).

    A state backup holds the fleet lease while it reads, so no fleet run rewrites a checkpoint
    under it; a file that changes anyway fails the backup ("changed during backup; retry"). The
    backup passphrase must differ from the state passphrase. The manifest is uploaded last, so an
    interrupted run leaves no backup that list or verify accept. With --keep-last/--keep-days,
    older complete backups are pruned afterwards.
    """
    settings = Settings.from_env()
    policy = Retention(keep_last, keep_days) if keep_last or keep_days else None
    if escrow:
        repo, bucket = repository(settings, True, creating=True)
        manifest = repo.create(escrow_sources(settings))
        pruned = repo.prune(policy) if policy is not None else None
    else:
        repo, bucket, manifest, pruned = create_state_backup(settings, lease_wait=lease_wait, retention=policy)
    click.echo(f"created {repo.kind} backup {manifest.backup_id}: {_describe(manifest)} in s3://{bucket}")
    if pruned is not None:
        _print_prune(repo, pruned)


@backup.command(name="list")
@escrow_option
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def list_(escrow: bool, as_json: bool) -> None:
    """List backups, newest first: complete, incomplete (upload never finished) or invalid."""
    repo, _bucket = repository(Settings.from_env(), escrow)
    infos = repo.list()
    if as_json:
        click.echo(json.dumps([info.model_dump(mode="json") for info in infos], indent=2))
        return
    if not infos:
        click.echo(f"no {repo.kind} backups")
    for info in infos:
        if info.status == "complete":
            when = info.created_at.isoformat(timespec="seconds") if info.created_at else "?"
            click.echo(f"{info.backup_id}  complete    {when}  {info.files} files  {info.total_size} bytes")
        else:
            click.echo(f"{info.backup_id}  {info.status:<10}  {info.problem}")


@backup.command()
@click.argument("backup_id")
@escrow_option
def verify(backup_id: str, escrow: bool) -> None:
    """Download backup BACKUP_ID (or `latest`) and check every hash and authentication tag.

    Writes nothing locally; exits 1 naming the object at fault if anything does not match.
    """
    repo, _bucket = repository(Settings.from_env(), escrow)
    manifest = repo.verify(_resolve_id(repo, backup_id))
    click.echo(f"verified {repo.kind} backup {manifest.backup_id}: {_describe(manifest)}")


@backup.command()
@click.argument("backup_id")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@escrow_option
def restore(backup_id: str, dest: Path, escrow: bool) -> None:
    """Restore backup BACKUP_ID (or `latest`) into DEST, which must be empty or not exist.

    Nothing is ever overwritten, and nothing appears in DEST unless every file matched its hash.
    DEST receives state/ and config/ (or escrow/) with the original bytes and modes; move them
    into place yourself once you have looked at them.
    """
    settings = Settings.from_env()
    repo, _bucket = repository(settings, escrow)
    manifest = repo.restore(_resolve_id(repo, backup_id), dest)
    detail = f"{repo.kind} backup {manifest.backup_id} into {dest}"  # ids and paths only, never contents
    AuditLog(settings.audit_log).record(stack="fleet", operation="backup-restore", result="ok", detail=detail)
    click.echo(f"restored {repo.kind} backup {manifest.backup_id} into {dest}: {_describe(manifest)}")


@backup.command()
@escrow_option
@_with_retention
def prune(escrow: bool, keep_last: int | None, keep_days: float | None) -> None:
    """Delete complete backups outside the retention policy, and uploads abandoned over a day ago.

    A backup is kept if it is among the newest --keep-last OR younger than --keep-days. Backups
    that fail authentication are never deleted, and nothing is deleted with a wrong passphrase.
    """
    repo, _bucket = repository(Settings.from_env(), escrow)
    _report_prune(repo, Retention(keep_last, keep_days))


def _report_prune(repo: BackupRepository, policy: Retention) -> None:
    _print_prune(repo, repo.prune(policy))


def _print_prune(repo: BackupRepository, result: PruneResult) -> None:
    for backup_id in result.deleted:
        click.echo(f"pruned {repo.kind} backup {backup_id}")
    for backup_id in result.debris_deleted:
        click.echo(f"removed abandoned upload {backup_id}")
    click.echo(f"kept {len(result.kept)} complete {repo.kind} backup(s)")
