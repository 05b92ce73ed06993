"""One tenant stack through the Automation API: workspace, operations, and error mapping.

Every stack gets a persistent work dir `<work_root>/<stack>/` (never the SDK's fresh temp dir, which
loses config; and never a shared one, since `stack select`/`init` rewrite workspace files and race,
pulumi#8186). Before each operation the project's `Pulumi.<stack>.yaml` is copied there atomically:
its secure values were written by `orchestrator.config.stack_file` with the passphrase-compatible crypto, so
we never call `set_config`/`set_all_config`, which put secret values on the command line. The
passphrase reaches the CLI only as a *path* (`PULUMI_CONFIG_PASSPHRASE_FILE`), the backend is the
`file://` state directory (0700), and the Cloudflare API goes through the throttle proxy
(`CLOUDFLARE_BASE_URL`). The inline program is `orchestrator.program.pulumi_program`, run in this
process, so `pulumi_cloudflare` is imported once per fleet run.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pulumi import automation as auto
from pulumi.automation import errors as auto_errors
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.config.atomic_file import make_private_dirs, write_atomically
from orchestrator.config.private_files import check_private_file, ensure_private_dir
from orchestrator.config.reissue import reissue
from orchestrator.config.secrets_provider import check_passphrase_env
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import project_name
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.drift import DriftReport, StepCollector, classify
from orchestrator.core.errors import (
    ConfigError,
    EdgeError,
    PulumiCliMissingError,
    SetupError,
    StackBusyError,
    StackError,
    StackMissingError,
    TransientStackError,
)
from orchestrator.core.masking import SECRET_MASK, one_line, redact
from orchestrator.core.names import stack_file, tenant_flag, tenant_of
from orchestrator.engine.locks import checkpoint_resources, state_file
from orchestrator.engine.plugins import installed_plugins
from orchestrator.fleet.ports import DeployedRecord, KeptResource, Operation, OpRequest, StackOutcome

log = logging.getLogger(__name__)

TRANSIENT_MARKERS = ("UNAVAILABLE", "connection reset", "i/o timeout", "TLS handshake timeout", "429 Too Many")
"""Engine/provider failures that a later retry may not hit (pulumi#7782: gRPC UNAVAILABLE)."""


# ---------------------------------------------------------------------------------------------
# VPS setup checks


def pinned_cli_version() -> str:
    """The CLI version matching the pinned SDK (requirements.txt): the one to install."""
    return importlib.metadata.version("pulumi")


def install_hint() -> str:
    version = pinned_cli_version()
    return (
        f"install the Pulumi CLI {version}: `curl -fsSL https://get.pulumi.com | sh -s -- --version {version}` "
        f"and put ~/.pulumi/bin on PATH (or set CLAWDBOT_PULUMI_ROOT)"
    )


def pulumi_command(root: Path | None = None) -> auto.PulumiCommand:
    """The CLI wrapper, built once per run (it runs `pulumi version` on construction)."""
    try:
        return auto.PulumiCommand(root=str(root) if root else None)
    except FileNotFoundError:
        where = f"{root}/bin/pulumi" if root else "`pulumi` on PATH"
        raise PulumiCliMissingError(f"Pulumi CLI not found ({where}): {install_hint()}") from None
    except auto_errors.InvalidVersionError as exc:
        raise SetupError(f"Pulumi CLI is too old for this SDK ({exc}): {install_hint()}") from None


def check_passphrase_file(path: Path) -> None:
    """Refuse a passphrase file that is missing or fails the owner-only rule. Never reads it.

    A setup error: the fleet stops, since every stack would fail alike.
    """
    try:
        check_private_file(path, "passphrase file")
    except ConfigError as exc:
        raise SetupError(str(exc)) from None


def check_policy_pack(settings: Settings) -> None:
    """Refuse to run stacks without the policy pack (or with an unreadable pack config)."""
    pack = settings.policy_pack_dir
    if not (pack / "PulumiPolicy.yaml").is_file():
        raise SetupError(f"policy pack {pack}: no PulumiPolicy.yaml there; set CLAWDBOT_POLICY_PACK_DIR")
    config = settings.policy_config
    if config is None:
        return
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SetupError(f"policy config {config} does not exist") from None
    except (OSError, ValueError) as exc:
        raise SetupError(f"policy config {config} is not readable JSON ({exc.__class__.__name__})") from None
    if not isinstance(document, dict):
        raise SetupError(f"policy config {config} must be a JSON object of policy name -> settings")


# ---------------------------------------------------------------------------------------------
# Per-stack files


@dataclass(frozen=True)
class StackPaths:
    """Where one stack's files live on the VPS."""

    project_dir: Path
    work_root: Path
    stack: str

    @classmethod
    def of(cls, settings: Settings, stack: str) -> StackPaths:
        return cls(settings.project_dir, settings.work_root, stack)

    @property
    def source_file(self) -> Path:
        """The registry entry: `Pulumi.<stack>.yaml` in the project dir (source of truth)."""
        return stack_file(self.project_dir, self.stack)

    @property
    def work_dir(self) -> Path:
        return self.work_root / self.stack

    @property
    def work_file(self) -> Path:
        return stack_file(self.work_dir, self.stack)

    @property
    def record_file(self) -> Path:
        return self.work_dir / "deployed.json"

    @property
    def last_good_record(self) -> Path:
        return self.work_dir / "last-good.json"

    @property
    def last_good_file(self) -> Path:
        return self.work_dir / "last-good.Pulumi.yaml"

    @property
    def reissued_file(self) -> Path:
        """The last good stack file under a newer config_version (a rollback that rolls forward)."""
        return self.work_dir / "rollback.Pulumi.yaml"

    @property
    def drift_file(self) -> Path:
        return self.work_dir / "drift.json"

    def log_file(self, operation: str) -> Path:
        return self.work_dir / f"last-{operation}.log"


_SALT_LINE = re.compile(rb"^encryptionsalt:.*$", re.MULTILINE)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomic replace inside a private directory (created 0700 when missing)."""
    make_private_dirs(path.parent)
    write_atomically(path, data, mode)


def sync_stack_file(source: Path, target: Path, stack: str) -> None:
    """Copy the stack file into the work dir, keeping a salt `stack init` wrote there.

    A new tenant's file may have no `encryptionsalt` yet (no secrets set). `stack init` then writes
    one into the work-dir copy; dropping it on the next sync would make the state undecryptable.
    """
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        hint = f"is {tenant_of(stack)} a registered tenant?"
        raise StackError(f"stack {stack}: no stack file {source} ({hint})") from None
    if not _SALT_LINE.search(data) and target.exists():
        salt = _SALT_LINE.search(target.read_bytes())
        if salt:
            data = salt.group(0) + b"\n" + data
    atomic_write(target, data)


# ---------------------------------------------------------------------------------------------
# What is deployed (read without starting the engine)


class DriftRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    checked_at: datetime
    drifted: bool
    summary: str


class FileDeployedStore:
    """Deployed records in each stack's work dir, validated against the state file's fingerprint."""

    def __init__(self, settings: Settings, project: str) -> None:
        self.settings = settings
        self.project = project

    def paths(self, stack: str) -> StackPaths:
        return StackPaths.of(self.settings, stack)

    def state_fingerprint(self, stack: str) -> str | None:
        path = state_file(self.settings.state_dir, self.project, stack)
        if path is None:
            return None
        info = path.stat()
        return f"{info.st_size}:{info.st_mtime_ns}"

    def get(self, stack: str) -> DeployedRecord | None:
        return self._read(self.paths(stack).record_file)

    def state_changed(self, record: DeployedRecord) -> bool:
        return self.state_fingerprint(record.stack) != record.state_fingerprint

    def put(self, record: DeployedRecord) -> DeployedRecord:
        final = record.model_copy(update={"state_fingerprint": self.state_fingerprint(record.stack)})
        atomic_write(self.paths(record.stack).record_file, final.model_dump_json(indent=2).encode())
        return final

    def invalidate(self, stack: str) -> None:
        """The stack was just changed and not yet judged: drop the record (keep the last good one)."""
        self.paths(stack).record_file.unlink(missing_ok=True)

    def forget(self, stack: str) -> None:
        paths = self.paths(stack)
        for path in (paths.record_file, paths.last_good_record, paths.last_good_file):
            path.unlink(missing_ok=True)

    def mark_good(self, stack: str) -> None:
        """The current deployment passed its health gate: keep it (record and stack file) for rollback."""
        paths = self.paths(stack)
        if paths.record_file.exists():
            atomic_write(paths.last_good_record, paths.record_file.read_bytes())
        if paths.work_file.exists():
            atomic_write(paths.last_good_file, paths.work_file.read_bytes())

    def last_good(self, stack: str) -> DeployedRecord | None:
        return self._read(self.paths(stack).last_good_record)

    def drift(self, stack: str) -> DriftRecord | None:
        path = self.paths(stack).drift_file
        try:
            return DriftRecord.model_validate_json(path.read_bytes())
        except (FileNotFoundError, ValidationError):
            return None

    def put_drift(self, stack: str, report: DriftReport) -> None:
        record = DriftRecord(checked_at=datetime.now(UTC), drifted=report.drifted, summary=report.describe())
        atomic_write(self.paths(stack).drift_file, record.model_dump_json().encode())

    @staticmethod
    def _read(path: Path) -> DeployedRecord | None:
        try:
            return DeployedRecord.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValidationError:
            # A damaged record only costs a redeploy; never trust it to skip one.
            log.warning("ignoring unreadable deployed record %s", path)
            return None


# ---------------------------------------------------------------------------------------------
# What `destroy` keeps on purpose (protected resources: the tenant's D1 database)


def kept_protected(state_dir: Path, project: str, stack: str) -> tuple[KeptResource, ...]:
    """Protected custom resources still in the stack's checkpoint (read from the file, no engine)."""
    return tuple(
        KeptResource(str(r.get("urn", "?")), str(r.get("type", "?")))
        for r in checkpoint_resources(state_dir, project, stack)
        if r.get("protect") and r.get("custom", True)
    )


@dataclass(frozen=True)
class RemovalCommands:
    """How to get rid of what `destroy` kept: delete it for good, or drop the stack and keep the data."""

    delete: tuple[str, ...]
    """Unprotect each kept resource, then destroy again: the data is gone for good."""
    keep_data: str
    """Drop the stack from the state backend; the resources stay at Cloudflare, unmanaged."""

    def describe(self) -> str:
        delete = " && ".join(self.delete)
        return f"to delete it for good run `{delete}`; or, to keep the data and drop the stack, run `{self.keep_data}`"


def removal_commands(settings: Settings, stack: str, kept: Sequence[KeptResource]) -> RemovalCommands:
    """The exact commands, run by hand and on purpose (the fleet never deletes protected data).

    They run the Pulumi CLI in the stack's work dir (its Pulumi.yaml names the backend) with the
    passphrase given as a file path, never as a value.
    """
    work_dir = StackPaths.of(settings, stack).work_dir
    prefix = (
        f"cd {shlex.quote(str(work_dir))} && PULUMI_BACKEND_URL={shlex.quote(settings.backend_url)} "
        f"PULUMI_CONFIG_PASSPHRASE_FILE={shlex.quote(str(settings.passphrase_file.resolve()))}"
    )
    unprotect = tuple(f"{prefix} pulumi state unprotect --stack {stack} --yes {shlex.quote(k.urn)}" for k in kept)
    destroy = f"python -m orchestrator destroy {tenant_flag(stack)} --yes"
    return RemovalCommands(
        delete=(*unprotect, f"cd {shlex.quote(str(REPO_ROOT))} && {destroy}"),
        keep_data=f"{prefix} pulumi stack rm --stack {stack} --force --yes",
    )


def describe_kept(settings: Settings, stack: str, kept: Sequence[KeptResource]) -> str:
    names = ", ".join(f"{k.kind} {k.name}" for k in kept)
    return f"kept protected {names} (its data survives); {removal_commands(settings, stack, kept).describe()}"


# ---------------------------------------------------------------------------------------------
# Error mapping


def _error_lines(text: str) -> str:
    """The lines of CLI output that say what went wrong, without the surrounding noise."""
    keep = [line.strip() for line in text.splitlines() if re.search(r"\berror\b|failed|refused|denied", line, re.I)]
    return " | ".join(dict.fromkeys(keep[-4:])) or text.strip()[-300:]


def _is_cli_binary(filename: object, cli: str | None) -> bool:
    if not isinstance(filename, (str, os.PathLike)):
        return False
    name = os.fspath(filename)
    return name == cli or Path(name).name in ("pulumi", "pulumi.exe")


def map_error(exc: BaseException, stack: str, operation: Operation, *, cli: str | None = None) -> EdgeError:
    """Turn an Automation API exception into our error naming the stack, tenant and next step."""
    who = f"stack {stack} (tenant {tenant_of(stack)})"
    if isinstance(exc, auto_errors.ConcurrentUpdateError):
        return StackBusyError(
            f"{who}: {operation} refused, another update holds the stack lock; if no update is running, "
            f"run `python -m orchestrator recover {tenant_flag(stack)}`"
        )
    if isinstance(exc, auto_errors.StackNotFoundError):
        return StackMissingError(
            f"{who}: no such stack in the state backend; "
            f"create it with `python -m orchestrator up {tenant_flag(stack)}`"
        )
    if isinstance(exc, auto_errors.CommandError):
        detail = one_line(redact(_error_lines(str(exc))))
        kind = {
            auto_errors.InlineSourceRuntimeError: "the Pulumi program failed",
            auto_errors.RuntimeError: "the Pulumi program failed",
            auto_errors.CompilationError: "the Pulumi program failed",
        }.get(type(exc), f"pulumi {operation} failed")
        message = f"{who}: {kind}: {detail} (full output: {operation} log in the stack's work dir)"
        if any(marker in str(exc) for marker in TRANSIENT_MARKERS):
            return TransientStackError(message)
        return StackError(message)
    if isinstance(exc, FileNotFoundError) and _is_cli_binary(exc.filename, cli):
        return PulumiCliMissingError(f"{who}: Pulumi CLI not found: {install_hint()}")
    if isinstance(exc, FileNotFoundError):
        missing = exc.filename if exc.filename is not None else "a file"
        return StackError(f"{who}: {operation} failed: {missing} does not exist")
    return StackError(f"{who}: {operation} failed: {type(exc).__name__}: {one_line(redact(str(exc)))}")


# ---------------------------------------------------------------------------------------------
# The executor


class PulumiProgram(Protocol):
    def __call__(self) -> None: ...


def default_program() -> PulumiProgram:
    module = importlib.import_module("orchestrator.program")
    program: PulumiProgram = module.pulumi_program
    return program


def runtime_options() -> dict[str, str]:
    """Python runtime options for Pulumi.yaml: this interpreter's virtualenv, when it is one."""
    if sys.prefix != sys.base_prefix and (Path(sys.prefix) / "bin" / "python").exists():
        return {"virtualenv": sys.prefix}
    return {}


def _summary_changes(changes: Mapping[Any, int] | None) -> dict[str, int]:
    return {str(getattr(op, "value", op)): int(n) for op, n in (changes or {}).items()}


class AutomationExecutor:
    """Runs operations on tenant stacks with the real Pulumi CLI (one call at a time per stack).

    `cancel`: the SDK's `Stack.cancel()` runs `pulumi cancel`, which for the file backend deletes
    every lock file of the stack (pulumi#9100) without stopping whoever holds it. The fleet never
    calls it on its own: `recover` (orchestrator.engine.locks) clears only locks whose holder is provably
    dead, and `cancel` here is for an operator who has checked that no update runs.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        command: auto.PulumiCommand | None = None,
        program: PulumiProgram | None = None,
        base_url: str | None = None,
        parallel: int = 10,
        pulumi_root: Path | None = None,
    ) -> None:
        # The CLI first: without it nothing else matters, and its error says how to install it.
        self.command = command or pulumi_command(pulumi_root or settings.pulumi_root)
        check_passphrase_file(settings.passphrase_file)
        check_passphrase_env(settings.passphrase_file)
        ensure_private_dir(settings.state_dir, "state directory")
        ensure_private_dir(settings.work_root, "work root")
        self.settings = settings
        self.project = project_name(settings.project_dir)
        self.program = program or default_program()
        self.base_url = base_url
        self.parallel = parallel
        check_policy_pack(settings)

    def policy_args(self) -> tuple[list[str], list[str] | None]:
        """The pack (and its config) every preview and up runs, as `--policy-pack`/`--policy-pack-config`.

        pulumi/automation/_stack.py (3.272.0): `preview()`/`up()` take `policy_packs` and
        `policy_pack_configs` and `_parse_extra_args` turns each into one flag; refresh and destroy
        take none (the CLI runs no pack there either).
        """
        config = self.settings.policy_config
        return [str(self.settings.policy_pack_dir.resolve())], [str(config.resolve())] if config else None

    def prepare(self) -> None:
        """Install the provider plugins of the installed SDKs, exact versions, once, before any stack runs."""
        work = self.settings.work_root / "plugins"
        ensure_private_dir(work, "plugin work dir")
        workspace = auto.LocalWorkspace(work_dir=str(work), pulumi_command=self.command, env_vars=self.env_vars())
        for plugin in installed_plugins():
            try:
                workspace.install_plugin(plugin.name, plugin.version, plugin.kind)
            except Exception as exc:
                raise SetupError(
                    f"installing provider plugin {plugin.name} {plugin.version} failed: "
                    f"{one_line(redact(_error_lines(str(exc))))}"
                ) from None

    def env_vars(self) -> dict[str, str]:
        """What the CLI and its plugins get on top of our environment: paths and URLs, no secrets.

        `PYTHONPATH`: the D1 migrations dynamic provider is pickled by reference to
        `components.d1_migrations` and `orchestrator.core.migrations`; the engine starts its provider
        process (`python -m pulumi.dynamic`) in the stack's work dir, outside the repo, so the code
        root has to be on its import path.
        """
        existing = os.environ.get("PYTHONPATH")
        env = {
            "PULUMI_BACKEND_URL": self.settings.backend_url,
            "PULUMI_CONFIG_PASSPHRASE_FILE": str(self.settings.passphrase_file.resolve()),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *([existing] if existing else [])]),
        }
        virtualenv = runtime_options().get("virtualenv")
        if virtualenv:
            # What the engine derives from the runtime option below; set here too so the provider's
            # launcher finds it whichever way the engine passes options to plugins.
            env["PULUMI_RUNTIME_VIRTUALENV"] = virtualenv
        if self.base_url:
            env["CLOUDFLARE_BASE_URL"] = self.base_url
        return env

    def project_settings(self) -> auto.ProjectSettings:
        """Pulumi.yaml of every work dir: our backend, and this interpreter's virtualenv.

        The engine hands the runtime options to plugins as `PULUMI_RUNTIME_<OPTION>`; the Python
        dynamic provider's launcher runs `$PULUMI_RUNTIME_VIRTUALENV/bin/python -m pulumi.dynamic`,
        so it gets the same packages (pulumi, pulumi_cloudflare) as this process instead of
        whatever `python3` is on PATH.
        """
        return auto.ProjectSettings(
            name=self.project,
            runtime=auto.ProjectRuntimeInfo("python", runtime_options() or None),
            backend=auto.ProjectBackend(url=self.settings.backend_url),
        )

    def workspace(self, stack: str) -> auto.LocalWorkspace:
        paths = StackPaths.of(self.settings, stack)
        ensure_private_dir(paths.work_dir, "stack work dir")
        return auto.LocalWorkspace(
            work_dir=str(paths.work_dir),
            program=self.program,
            env_vars=self.env_vars(),
            secrets_provider="passphrase",
            project_settings=self.project_settings(),
            pulumi_command=self.command,
        )

    def open(self, stack: str, *, create: bool, config_from: Path | None = None) -> auto.Stack:
        """Sync the stack file into the work dir and select (or create) the stack."""
        paths = StackPaths.of(self.settings, stack)
        sync_stack_file(config_from or paths.source_file, paths.work_file, stack)
        workspace = self.workspace(stack)
        if create:
            return auto.Stack.create_or_select(stack, workspace)
        return auto.Stack.select(stack, workspace)

    def run(self, request: OpRequest) -> StackOutcome:
        return self._run(request, config_from=None)

    def rollback(self, stack: str, config_version: int | None) -> StackOutcome:
        """Re-apply the stack file that last passed the health gate, with the code of this run.

        That reproduces the last good deployment only if the program and render inputs are the
        same as then: the fleet checks the digests in the last-good record before calling this.
        With `config_version`, the file is re-issued under that version first (only that key
        changes): the Worker never adopts a config below one it served, so the fleet rolls forward.
        The output goes to `last-rollback.log`, so the failed up's log is kept.
        """
        paths = StackPaths.of(self.settings, stack)
        good = paths.last_good_file
        if not good.exists():
            raise StackError(f"stack {stack}: no last good deployment recorded; nothing to roll back to")
        message = "rollback to last good"
        if config_version is not None:
            atomic_write(paths.reissued_file, reissue(good.read_bytes(), config_version, path=good))
            good, message = paths.reissued_file, f"{message}, re-issued as config_version {config_version}"
        request = OpRequest(stack, Operation.UP, message=message)
        return self._run(request, config_from=good, log_name="rollback")

    def outputs(self, stack: str) -> dict[str, Any]:
        """The stack's outputs as the CLI prints them without `--show-secrets` (secrets are masked).

        Not `Stack.outputs()`: that also runs `stack output --show-secrets` and would pull every
        secret output into this process.
        """
        paths = StackPaths.of(self.settings, stack)
        try:
            self.open(stack, create=False)
            result = self.command.run(
                ["stack", "output", "--json", "--stack", stack], str(paths.work_dir), self.env_vars()
            )
            values: Any = json.loads(result.stdout or "{}")
        except EdgeError:
            raise
        except ValueError:
            raise StackError(f"stack {stack}: `pulumi stack output --json` did not print JSON") from None
        except Exception as exc:
            raise map_error(exc, stack, Operation.PREVIEW, cli=self.command.command) from None
        if not isinstance(values, dict):
            raise StackError(f"stack {stack}: `pulumi stack output --json` did not print an object")
        return {str(k): (SECRET_MASK if v == SECRET_MASK else v) for k, v in values.items()}

    def cancel(self, stack: str) -> None:
        """`pulumi cancel` (file backend: deletes all of the stack's lock files). See the class doc."""
        try:
            self.open(stack, create=False).cancel()
        except EdgeError:
            raise
        except Exception as exc:
            raise map_error(exc, stack, Operation.REFRESH, cli=self.command.command) from None

    def _run(self, request: OpRequest, *, config_from: Path | None, log_name: str | None = None) -> StackOutcome:
        started = time.monotonic()
        paths = StackPaths.of(self.settings, request.stack)
        try:
            stack = self.open(request.stack, create=request.operation is Operation.UP, config_from=config_from)
            with _OutputLog(paths.log_file(log_name or request.operation.value)) as output:
                outcome = self._dispatch(stack, request, output)
        except EdgeError:
            raise
        except Exception as exc:  # every Automation API failure becomes a StackError naming the stack
            raise map_error(exc, request.stack, request.operation, cli=self.command.command) from None
        return replace(outcome, duration_s=time.monotonic() - started)

    def _dispatch(self, stack: auto.Stack, request: OpRequest, output: Callable[[str], None]) -> StackOutcome:
        name, op = request.stack, request.operation
        packs, pack_configs = self.policy_args()
        if op is Operation.PREVIEW:
            collector = StepCollector()
            preview = stack.preview(
                parallel=self.parallel,
                on_output=output,
                on_event=collector,
                message=request.message,
                color="never",
                policy_packs=packs,
                policy_pack_configs=pack_configs,
            )
            changes = _summary_changes(preview.change_summary)
            drift = classify(collector.steps, changes) if request.drift_check else None
            return StackOutcome(name, op, changes, {}, drift)
        if op is Operation.UP:
            # show_secrets=False keeps config secrets out of the summary (`stack history` without
            # --show-secrets); the outputs are another matter: the SDK always reads them with
            # --show-secrets after the update, and we drop the secret ones here.
            result = stack.up(
                parallel=self.parallel,
                on_output=output,
                message=request.message,
                color="never",
                show_secrets=False,
                policy_packs=packs,
                policy_pack_configs=pack_configs,
            )
            outputs = {key: value.value for key, value in result.outputs.items() if not value.secret}
            return StackOutcome(name, op, _summary_changes(result.summary.resource_changes), outputs)
        if op is Operation.REFRESH:
            collector = StepCollector()
            if request.preview_only:
                previewed = stack.preview_refresh(
                    parallel=self.parallel, on_output=output, on_event=collector, color="never"
                )
                changes = _summary_changes(previewed.change_summary)
            else:
                refreshed = stack.refresh(
                    parallel=self.parallel,
                    on_output=output,
                    on_event=collector,
                    clear_pending_creates=request.clear_pending_creates or None,
                    color="never",
                    show_secrets=False,
                )
                changes = _summary_changes(refreshed.summary.resource_changes)
            drift = classify(collector.steps, changes) if request.drift_check else None
            return StackOutcome(name, op, changes, {}, drift)
        # Protected resources (the tenant's D1 database) stay: without `exclude_protected` the
        # engine refuses the whole destroy. What stayed is read back from the checkpoint.
        destroyed = stack.destroy(
            parallel=self.parallel,
            on_output=output,
            message=request.message,
            color="never",
            show_secrets=False,
            exclude_protected=True,
        )
        kept = kept_protected(self.settings.state_dir, self.project, name)
        advice = (describe_kept(self.settings, name, kept),) if kept else ()
        changes = _summary_changes(destroyed.summary.resource_changes)
        return StackOutcome(name, op, changes, {}, kept=kept, advice=advice)


class _OutputLog:
    """The engine's progress output for one operation, redacted, in the stack's work dir (0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def __enter__(self) -> Callable[[str], None]:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._handle = os.fdopen(fd, "w", encoding="utf-8")
        return self.write

    def write(self, line: str) -> None:
        self._handle.write(redact(line) + "\n")

    def __exit__(self, *exc: object) -> None:
        self._handle.close()
