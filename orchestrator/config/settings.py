"""Where the control plane keeps things on the VPS, read once from the environment.

Every path has a default under the operator's home so a fresh checkout works; on a VPS
scripts/setup-vps.sh writes the layout to one env file (`/etc/clawdbot/clawdbot.env`) that the
systemd units and this CLI both read. Precedence: process environment > env file > defaults.
Secrets are never settings values: only the *paths* of files that hold them are
(`PULUMI_CONFIG_PASSPHRASE_FILE`, backup passphrase file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.config.state_backend import StateBackend, file_backend, parse_state_backend
from orchestrator.core.contract import IN_CHECKOUT, REPO_ROOT
from orchestrator.core.errors import ConfigError

ENV_PREFIX = "CLAWDBOT_"
ENV_FILE_VAR = "CLAWDBOT_ENV_FILE"
DEFAULT_ENV_FILE = Path("/etc/clawdbot/clawdbot.env")
# The format setup-vps.sh writes and refuses otherwise (scripts/vps/lib.sh ENV_LINE_RE): the value is
# literal, with nothing systemd's EnvironmentFile= would unquote, unescape or expand, so both readers
# see the same bytes.
ENV_LINE = re.compile(r"[A-Z_][A-Z0-9_]*=[^\s\"'\\$`#]*")
TEMPORAL_ADDRESS = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]{2,45}\]):(?P<port>[0-9]{1,5})"
)
"""What the SDK's `Client.connect(target_host)` takes: "``host:port`` for the Temporal server" (temporalio 1.35.0
client/_client.py), no scheme, no path."""


def read_env_file(path: Path) -> dict[str, str]:
    """The `KEY=VALUE` lines of the VPS env file; any other line is a ConfigError naming `file:line`."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{bad_line}: not UTF-8") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.startswith("#"):
            continue
        if not ENV_LINE.fullmatch(line):
            # The line is not echoed: an operator may have pasted a secret into it.
            raise ConfigError(
                f"{path}:{number}: not a plain KEY=VALUE line (KEY of A-Z, 0-9, _; the value literal: "
                "no quotes, spaces, $, #, backslash or backtick)"
            )
        key, value = line.split("=", 1)
        if key in values:
            raise ConfigError(f"{path}:{number}: {key} is set twice")
        values[key] = value
    return values


def _environment(env: Mapping[str, str], default_env_file: Path) -> Mapping[str, str]:
    """The env file's values under the process environment's (an empty value counts as unset)."""
    named = env.get(ENV_FILE_VAR)
    if named:
        path = Path(named)
        if not path.exists() or path.is_dir():  # /dev/null is a valid "no env file"
            raise ConfigError(f"{ENV_FILE_VAR} names {path}, which is not a file")
    elif default_env_file.is_file():
        path = default_env_file
    else:
        return env
    merged = dict(read_env_file(path))
    merged.update({key: value for key, value in env.items() if value})
    return merged


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
    state_backend: str | None = None
    """Pulumi backend URL when the state is not `file://<state_dir>`: `s3://<bucket>/<folder>?endpoint=
    https://<account>.r2.cloudflarestorage.com&region=auto&s3ForcePathStyle=true` for one state on R2
    shared by several nodes (docs/cluster.md); checked by `config/state_backend.py`."""
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
    serve_tokens_file: Path | None = None
    """0600 file of the control room's bearer tokens (hashed); unset means `serve-tokens.json` beside the
    audit log, which setup-vps.sh puts in the service's data directory."""
    pulumi_root: Path | None = None
    """Directory of a pinned Pulumi CLI install (`<root>/bin/pulumi`); unset means `pulumi` on PATH."""
    policy_pack_dir: Path = REPO_ROOT / "policies"
    """The CrossGuard pack every fleet `preview` and `up` runs (`--policy-pack`), as a hand-run
    `pulumi preview --policy-pack policies` does."""
    policy_config: Path | None = None
    """JSON file of per-policy settings for that pack (`--policy-pack-config`; the format
    `policy check --policy-config` reads). `preview`/`up --policy-config FILE` overrides it."""
    api_budget_key: Literal["fleet", "token"] = "fleet"
    """What one Cloudflare API budget is counted for: `fleet` (default) one budget for every request
    of a run, since Cloudflare counts 1,200 requests / 5 min per *user*, across all of the user's tokens;
    `token` one per credential, right only when each token belongs to a different user (or account)."""
    api_budget_share: float = Field(default=1.0, gt=0, le=1)
    """This node's share of the Cloudflare user's API budget when several nodes spend it (cluster mode:
    1/N for N equal nodes; the nodes' shares add up to at most 1). The node's throttle sends at most
    floor(budget x share) requests per window (engine/budget.py `node_share`); 1 on a single VPS."""
    temporal_address: str = "127.0.0.1:7233"
    """`host:port` of the Temporal frontend the cluster engine uses (`--engine temporal`, `worker`);
    `temporal dev` starts a dev server there."""
    temporal_namespace: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
    """Temporal namespace of the fleet's workflows (the dev server always has `default`)."""
    temporal_task_queue: str = Field(default="clawdbot-fleet", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
    """Base name of the task queues; with a region, a node serves `<task_queue>-<region>`."""
    temporal_region: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    """The region this node serves (one task queue per region); unset: the base task queue alone."""
    temporal_worker_concurrency: int | None = Field(default=None, ge=1, le=64)
    """Stack operations one worker runs at once (Temporal's `max_concurrent_activities`); unset: as many
    as this node's share of the API budget keeps busy, the fleet's own sizing (`ops/fleet_run.py`
    `worker_concurrency`: 6 at the whole 1,200 / 5 min, 3 at `api_budget_share` 0.5)."""
    temporal_queue_budget_share: float = Field(default=1.0, gt=0, le=1)
    """The share of the Cloudflare user's API budget that all the nodes of this node's task queue spend
    together (1 with one queue; with a queue per region, that region's share). It sizes the queue's
    server-side rate limit, which every worker of the queue must set alike (`cluster.worker.queue_rate`)."""
    temporal_lease_s: float = Field(default=30.0, ge=1.0, le=3600.0)
    """A stack operation's lease: a worker that has not heartbeaten for this long is taken as dead and
    the operation is retried on another worker (after recovering what it left behind)."""

    @field_validator("temporal_address")
    @classmethod
    def _check_temporal_address(cls, value: str) -> str:
        match = TEMPORAL_ADDRESS.fullmatch(value)  # not `$`: it matches before a final newline
        if match is None or not 1 <= int(match["port"]) <= 65535:
            raise ValueError(
                "must be host:port of the Temporal frontend (a DNS name, an IPv4 address or [an IPv6 one], "
                "port 1-65535), with no scheme or path, e.g. 127.0.0.1:7233"
            )
        return value

    @field_validator("state_backend")
    @classmethod
    def _check_state_backend(cls, value: str | None) -> str | None:
        if value is not None:
            parse_state_backend(value)
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, default_env_file: Path = DEFAULT_ENV_FILE) -> Settings:
        """Settings from `environ` (default: the process environment) over the VPS env file, which is
        `$CLAWDBOT_ENV_FILE` if set, else `default_env_file` if it exists."""
        env = _environment(os.environ if environ is None else environ, default_env_file)
        values: dict[str, object] = {}
        for field in cls.model_fields:
            raw = env.get(ENV_PREFIX + field.upper())
            if raw:
                values[field] = raw
        passphrase = env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
        if passphrase and "passphrase_file" not in values:
            values["passphrase_file"] = passphrase
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_first_problem(exc)) from None

    @property
    def fleet_lease_file(self) -> Path:
        """The one lease every state-changing run holds (fleet operations, state backups)."""
        return self.work_root / "fleet.lock"

    @property
    def tokens_file(self) -> Path:
        return self.serve_tokens_file or self.audit_log.parent / "serve-tokens.json"

    @property
    def backend(self) -> StateBackend:
        """The checked backend: `state_backend` if set, else the file backend in `state_dir`."""
        if self.state_backend is not None:
            return parse_state_backend(self.state_backend)
        return file_backend(str(self.state_dir.resolve()))

    @property
    def temporal_queue(self) -> str:
        """The task queue this node's worker polls and its rollouts' operations are sent to."""
        return (
            f"{self.temporal_task_queue}-{self.temporal_region}" if self.temporal_region else self.temporal_task_queue
        )

    @property
    def backend_url(self) -> str:
        return self.backend.url


def _first_problem(exc: ValidationError) -> str:
    """`CLAWDBOT_STATE_BACKEND: <reason>`: the variable an operator sets, never the value given."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "?"
    reason = str(error["msg"]).removeprefix("Value error, ")
    return f"{ENV_PREFIX}{field.upper()} (setting {field}): {reason}"
