"""One tenant stack through the Automation API: the executor behind the fleet's `StackExecutor` port.

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
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from pulumi import automation as auto

from orchestrator.config.private_files import ensure_private_dir
from orchestrator.config.reissue import reissue
from orchestrator.config.secrets_provider import check_passphrase_env
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import project_name
from orchestrator.core.cloudflare_api import BASE_URL_VARIABLE
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.drift import StepCollector, classify
from orchestrator.core.errors import EdgeError, SetupError, StackError
from orchestrator.core.masking import SECRET_MASK, redact, report_line
from orchestrator.engine.errors import error_lines, map_error
from orchestrator.engine.kept import describe_kept, kept_protected
from orchestrator.engine.plugins import installed_plugins
from orchestrator.engine.setup import check_passphrase_file, check_policy_pack, pulumi_command
from orchestrator.engine.state_store import state_of
from orchestrator.engine.workdirs import StackPaths, atomic_write, sync_stack_file
from orchestrator.fleet.ports import Operation, OpRequest, StackOutcome

log = logging.getLogger(__name__)


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
                    f"{report_line(error_lines(str(exc)))}"
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
            env[BASE_URL_VARIABLE] = self.base_url
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
        kept = kept_protected(state_of(self.settings), self.project, name)
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
