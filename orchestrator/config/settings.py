"""Where the control plane keeps things on the VPS, read once from the environment.

Every path has a default under the operator's home so a fresh checkout works; production sets
`CLAWDBOT_*` variables in the systemd units (scripts/). Secrets are never settings values: only
the *paths* of files that hold them are (`PULUMI_CONFIG_PASSPHRASE_FILE`, backup passphrase file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.core.contract import IN_CHECKOUT, REPO_ROOT

ENV_PREFIX = "CLAWDBOT_"


def _default_home() -> Path:
    return Path.home() / ".clawdbot"


class Settings(BaseModel):
    """Control-plane locations and endpoints. Construct with `Settings.from_env()`."""

    model_config = ConfigDict(frozen=True)

    project_dir: Path = Field(default_factory=lambda: REPO_ROOT if IN_CHECKOUT else Path.cwd())
    """Directory holding Pulumi.yaml and the Pulumi.<stack>.yaml files (the tenant registry): the checkout
    when run from one, else the current directory, as for the Pulumi CLI (`--project-dir` overrides)."""
    state_dir: Path = _default_home() / "state"
    """Pulumi self-managed backend (`file://<state_dir>`), kept 0700."""
    passphrase_file: Path = _default_home() / "passphrase"
    """0600 file holding the state passphrase (exported as PULUMI_CONFIG_PASSPHRASE_FILE)."""
    work_root: Path = _default_home() / "work"
    """Persistent per-stack Automation API work directories."""
    audit_log: Path = _default_home() / "audit.jsonl"
    """Append-only JSON-lines audit log of fleet operations."""
    local_edge_dir: Path = _default_home() / "local-edge"
    """Persisted KV/D1 and runtime files of the local edge (workerd via Miniflare)."""
    backup_passphrase_file: Path = _default_home() / "backup-passphrase"
    """0600 file with the backup passphrase (distinct from the state passphrase)."""
    r2_endpoint: str | None = None
    """S3-compatible endpoint for backups (Cloudflare R2: https://<account>.r2.cloudflarestorage.com)."""
    r2_bucket: str | None = None
    """Bucket receiving encrypted backups."""
    r2_region: str = "auto"
    """Signing region for the S3 API (R2 takes `auto`)."""
    escrow_bucket: str | None = None
    """Bucket for the state-passphrase escrow; defaults to r2_bucket. A separate bucket (with its own
    credentials) keeps the passphrase apart from the state it unlocks."""
    backup_marker: Path = _default_home() / "last-backup.json"
    """Local record of the last completed state backup (written by `backup create`, read by `doctor`)."""
    backup_max_age_hours: float = 26.0
    """`doctor` fails when the last completed backup is older than this (daily timer plus slack)."""
    min_free_disk_mb: int = 1024
    """`doctor` fails when the filesystem of the state directory has less free space than this."""
    pulumi_root: Path | None = None
    """Directory of a pinned Pulumi CLI install (`<root>/bin/pulumi`); unset means `pulumi` on PATH."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in cls.model_fields:
            raw = env.get(ENV_PREFIX + field.upper())
            if raw:
                values[field] = raw
        passphrase = env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
        if passphrase and "passphrase_file" not in values:
            values["passphrase_file"] = passphrase
        return cls.model_validate(values)

    @property
    def fleet_lease_file(self) -> Path:
        """The one lease every state-changing run holds (fleet operations, state backups)."""
        return self.work_root / "fleet.lock"

    @property
    def backend_url(self) -> str:
        return f"file://{self.state_dir.resolve()}"
