"""`python -m orchestrator`: the thin command-line door to the control plane.

Each command group lives in its own module, named in `COMMANDS` and imported only when it runs
(`cli/lazy.py`: most commands never evaluate the program, so they never pay for importing the
Cloudflare provider SDK). Library errors (`orchestrator.core.errors.EdgeError`) become
`Error: …` and exit 1, usage errors exit 2 (click).

- `fleet`: preview, up, refresh, destroy, drift, status, recover, outputs; `fleet_options`: their options;
- `health`: the health table;
- `tenants`, `platform`, `secrets`, `plan`, `policy`, `local`, `backup`, `audit`, `doctor`, `demo`, `serve`: theirs;
- `worker`: this node's Temporal worker; `temporal`: `temporal dev`, a dev server (the cluster engine);
- `schedules`: `temporal schedules apply|list|trigger`, drift/health/backup as Temporal schedules;
- `lazy`: the lazily loaded command table; `errors`: exit statuses and the one `Error:` line;
- `tables`: how tables print (the terminal's width, never cut when piped); `tenant_fields`: `tenants add`'s flags.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

import click

from orchestrator.cli.errors import INTERRUPTED
from orchestrator.cli.lazy import LazyCommand, LazyGroup

_FLEET = "orchestrator.cli.fleet"

COMMANDS: dict[str, LazyCommand] = {
    "audit": LazyCommand(
        "orchestrator.cli.audit:audit",
        "Show the audit log: fleet runs, tenant and secret changes (names only), filtered by --tenant; --json.",
    ),
    "backup": LazyCommand(
        "orchestrator.cli.backup:backup",
        "Encrypted backups of the Pulumi state and stack configs to S3-compatible storage (R2).",
    ),
    "demo": LazyCommand(
        "orchestrator.cli.demo:demo", "Walk through the local edge with the example tenants (about a minute)."
    ),
    "destroy": LazyCommand(
        f"{_FLEET}:destroy",
        "Delete every Cloudflare resource of the selected tenants except protected ones (their D1 databases).",
    ),
    "doctor": LazyCommand(
        "orchestrator.cli.doctor:doctor",
        "Check the Pulumi CLI version, the state backend (file:// here, or s3:// on R2 with its key pair, and "
        "that PULUMI_BACKEND_URL agrees), the state directory (0700) and passphrase file (0600), that the backup "
        "passphrase file is 0600 and differs from the state passphrase, that every stack's encryptionsalt opens "
        "with the passphrase (the file backend silently skips those that do not), free disk, and how old the last "
        "completed backup is.",
    ),
    "drift": LazyCommand(
        f"{_FLEET}:drift", "Detect drift: refresh --preview-only per tenant, classified from engine events."
    ),
    "health": LazyCommand(
        "orchestrator.cli.health:health",
        "Probe each tenant's health endpoint and show a fleet table; exit 1 if any is not ok.",
    ),
    "local": LazyCommand(
        "orchestrator.cli.local:local",
        "Run every tenant's edge on this machine: one workerd process, routed by hostname.",
    ),
    "outputs": LazyCommand(
        f"{_FLEET}:outputs",
        "A tenant's stack outputs as last deployed (secret outputs masked; needs the Pulumi CLI).",
    ),
    "plan": LazyCommand(
        "orchestrator.cli.plan:plan", "Show what a stack would register, without credentials or the Pulumi CLI."
    ),
    "platform": LazyCommand(
        "orchestrator.cli.platform:platform",
        "Write the platform stack (Pulumi.prod.yaml): account, environment, compatibility date, isolation.",
    ),
    "policy": LazyCommand("orchestrator.cli.policy:policy", "Run the CrossGuard policy pack (policies/) in-process."),
    "preview": LazyCommand(
        f"{_FLEET}:preview", "Show what `up` would change for the selected tenants (no changes made)."
    ),
    "recover": LazyCommand(
        f"{_FLEET}:recover",
        "Clear stale locks left by a killed run and say exactly what else to run (pending operations).",
    ),
    "refresh": LazyCommand(
        f"{_FLEET}:refresh",
        "Read the real state of the selected tenants' resources from Cloudflare (3+ API calls per Worker).",
    ),
    "secrets": LazyCommand(
        "orchestrator.cli.secrets:secrets",
        "Set, list, unset and import tenant secrets, rotate relay keys, adopt stack files, offline, in the "
        "Pulumi.prod.<tenant>.yaml files.",
    ),
    "serve": LazyCommand(
        "orchestrator.cli.serve:serve",
        "Serve the control room: a JSON API (schema at /api/openapi.json) and the live architecture page.",
    ),
    "status": LazyCommand(
        f"{_FLEET}:status",
        "Per tenant: isolation mode, last update, deployed bundle hash, last drift check and live health (no engine).",
    ),
    "temporal": LazyCommand(
        "orchestrator.cli.temporal:temporal",
        "The Temporal cluster engine: `temporal dev` starts a dev server on this machine; `temporal schedules` "
        "runs drift, health and backup once for the cluster.",
    ),
    "tenants": LazyCommand(
        "orchestrator.cli.tenants:tenants",
        "List, inspect, register and unregister tenants; sweep a departed dispatch tenant's leftovers by tag "
        "(no Pulumi engine involved).",
    ),
    "up": LazyCommand(
        f"{_FLEET}:up", "Deploy changed tenants: a canary, then waves, with a health gate between waves."
    ),
    "worker": LazyCommand(
        "orchestrator.cli.worker:worker",
        "Run this node's Temporal worker: the fleet's workflows and stack operations, until SIGTERM.",
    ),
}


def _version() -> str:
    try:
        return version("clawdbot-edge")
    except PackageNotFoundError:  # a checkout that was never installed: its pyproject says
        import tomllib

        from orchestrator.core.contract import REPO_ROOT

        with (REPO_ROOT / "pyproject.toml").open("rb") as f:
            found: str = tomllib.load(f)["project"]["version"]
        return found


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", "-V", prog_name="clawdbot-edge", message="%(prog)s %(version)s")
@click.option(
    "--project-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="CLAWDBOT_PROJECT_DIR",
    show_envvar=True,
    help="Directory with Pulumi.yaml and the Pulumi.<stack>.yaml files. Default: this checkout, or the "
    "current directory for an installed package.",
)
def cli(project_dir: Path | None) -> None:
    """Clawdbot edge: run a fleet of per-tenant Cloudflare edges from your own server.

    Tenants are the Pulumi.prod.<tenant>.yaml files of the project directory. Shell completion:
    `eval "$(_CLAWDBOT_EDGE_COMPLETE=bash_source clawdbot-edge)"` (zsh_source, fish_source likewise).
    """
    if project_dir is not None:
        # Every layer reads its locations through Settings.from_env(); the flag joins them there.
        os.environ["CLAWDBOT_PROJECT_DIR"] = str(project_dir.resolve())


def main() -> None:
    """Run the CLI; exit statuses as in `cli/errors.py`, errors as JSON on stdout when `--json` was asked."""
    as_json = "--json" in sys.argv[1:]
    try:
        # Usage lines name what was run: the console script (the units' ExecStart) or the module.
        prog = "clawdbot-edge" if Path(sys.argv[0]).name == "clawdbot-edge" else "python -m orchestrator"
        code = cli.main(prog_name=prog, standalone_mode=False)
    except click.Abort as exc:  # Ctrl-C while click parses or loads a command, or a declined prompt
        # click.confirm raises Abort "from None": the interrupt is still its __context__
        interrupted = isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt)
        _fail("interrupted" if interrupted else "aborted", INTERRUPTED if interrupted else 1, as_json)
    except click.ClickException as exc:
        if not as_json:
            exc.show()
            _exit(exc.exit_code)
        _fail(exc.format_message(), exc.exit_code, as_json)
    _exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"error": message, "exit_code": code}))
    else:
        click.echo(f"Error: {message}" if code != INTERRUPTED else "Interrupted.", err=True)
    _exit(code)


def _exit(code: int) -> NoReturn:
    """Exit with `code`. Once a Temporal client ran (`--engine temporal`, `worker`), skip the interpreter's
    teardown: the SDK's runtime threads can abort CPython's finalization with "PyGILState_Release: thread
    state … must be current" and exit 134 (temporalio/sdk-python#300, open; seen here with 1.35.0)."""
    if "temporalio.bridge.runtime" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
