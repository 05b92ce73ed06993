"""`doctor`: is this VPS safe and ready to run the fleet? One line per check, exit 1 on a failure."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from orchestrator.cli.errors import EdgeCommand
from orchestrator.config.settings import Settings
from orchestrator.ops.doctor import run_checks


@click.command(cls=EdgeCommand)
@click.option("--json", "as_json", is_flag=True, help='One JSON document: {"ok": …, "checks": [{name, ok, detail}]}.')
def doctor(as_json: bool) -> None:
    """Check the Pulumi CLI version, the state backend (file:// here, or s3:// on R2 with its key
    pair, and that PULUMI_BACKEND_URL agrees), the state directory (0700) and passphrase file (0600), that
    the backup passphrase file is 0600 and differs from the state passphrase, that every stack's
    encryptionsalt opens with the passphrase (the file backend silently skips those that do not),
    free disk, and how old the last completed backup is.

    Prints one line per check and exits 1 if any failed. Nothing secret is printed.
    """
    checks = run_checks(Settings.from_env())
    if as_json:
        ok = all(c.ok for c in checks)
        click.echo(json.dumps({"ok": ok, "checks": [asdict(c) for c in checks]}, indent=2))
        click.get_current_context().exit(0 if ok else 1)
    for check in checks:
        click.echo(check.line())
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise click.ClickException(f"{len(failed)} check(s) failed: {', '.join(failed)}")
