"""`secrets set|list|unset|import|rotate|adopt`: tenant secrets in the stack files, relay-key rotation.

Values are read from a hidden prompt or from stdin, never from the command line (argv is visible
in `ps` and shell history), and never printed. The state passphrase comes from
PULUMI_CONFIG_PASSPHRASE_FILE. Every change goes to the audit log, by name only.
"""

from __future__ import annotations

import json
import sys

import click

from orchestrator.cli.errors import EdgeGroup
from orchestrator.config.secret_bulk import import_secrets, list_secrets, parse_secrets, unset_secret
from orchestrator.config.secret_entry import (
    adopt_stack_file,
    check_secret_name,
    rotate_relay_keys,
    set_tenant_secret,
    tenant_file,
)
from orchestrator.config.secrets_provider import check_passphrase_env, read_state_passphrase
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import project_name, select_tenant_stacks
from orchestrator.core.names import tenant_of, tenant_stack
from orchestrator.engine.locks import state_key
from orchestrator.engine.state_store import state_of
from orchestrator.fleet.audit import AuditLog


@click.group(cls=EdgeGroup)
def secrets() -> None:
    """Set, list, unset and import tenant secrets, rotate relay keys, adopt stack files, offline, in the
    Pulumi.prod.<tenant>.yaml files."""


@secrets.command(name="set", context_settings={"allow_extra_args": True})
@click.argument("tenant")
@click.argument("name")
@click.option("--add", is_flag=True, help="Also add NAME to the tenant's secret_names if it is not there.")
@click.pass_context
def set_(ctx: click.Context, tenant: str, name: str, add: bool) -> None:
    """Encrypt a value into clawdbot:secrets.NAME of tenant TENANT.

    The value is read from a hidden prompt (typed twice) on a terminal, or from stdin otherwise
    (one trailing newline is dropped), e.g. `pass show acme/stripe | … secrets set acme STRIPE_KEY`.
    It is never accepted as an argument. Run `up` for the tenant afterwards to push it.
    """
    if ctx.args:
        # Click would echo an unexpected argument back; it may be the secret, so say nothing of it.
        raise click.UsageError(
            "secret values are never taken as arguments (they end up in ps and shell history): "
            "type the value at the prompt or pipe it on stdin"
        )
    settings = Settings.from_env()
    _registered(settings, tenant)  # fail before asking for the value
    check_secret_name(tenant, name)
    passphrase = read_state_passphrase(settings.passphrase_file)
    value = _read_value(name)
    written = set_tenant_secret(settings.project_dir, tenant, name, value, passphrase, add=add)
    _audit(settings, tenant, "secret-set", f"names: {name}")
    if written.added_to_secret_names:
        click.echo(f"added {name} to secret_names of stack {written.stack}")
    click.echo(f"set {name} in {written.path.name} (encrypted); run `up` for stack {written.stack} to deploy it")


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value: str = click.prompt(f"Value for {name}", hide_input=True, confirmation_prompt=True, err=True)
        return value
    data = sys.stdin.read()
    return data[:-1] if data.endswith("\n") else data


@secrets.command()
@click.argument("tenants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Rotate every tenant in the registry.")
def rotate(tenants: tuple[str, ...], all_: bool) -> None:
    """Rotate the relay key of TENANTS (or --all) by bumping relay_key_generation.

    Each stack file is rewritten atomically, and all are checked before any is written. The new
    key is created by the next `up`, which re-encrypts every secret envelope and the signed
    config in that one update; until then the Worker keeps the old key.
    """
    if bool(tenants) == all_:
        raise click.UsageError("name one or more tenants, or pass --all (not both)")
    settings = Settings.from_env()
    project_dir = settings.project_dir
    chosen = [tenant_of(stack) for stack in select_tenant_stacks(project_dir, None if all_ else tenants)]
    check_passphrase_env(settings.passphrase_file)
    for rotation in rotate_relay_keys(project_dir, chosen):
        _audit(settings, tenant_of(rotation.stack), "rotate", f"relay_key_generation -> {rotation.new_generation}")
        click.echo(
            f"stack {rotation.stack}: relay_key_generation {rotation.old_generation} -> {rotation.new_generation}"
        )
    click.echo("now run `up` for these stacks: the relay key is replaced and every envelope re-encrypted")


@secrets.command()
@click.argument("tenants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Adopt every tenant stack file in the registry.")
@click.option("--dry-run", is_flag=True, help="Only say what would be dropped; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def adopt(tenants: tuple[str, ...], all_: bool, dry_run: bool, as_json: bool) -> None:
    """Make TENANTS' stack files (or --all) usable with your passphrase file.

    For a stack file whose encryptionsalt was made with a passphrase nobody has any more (the
    examples of an old checkout, a file copied from another machine): `pulumi stack init` would reuse
    that salt and fail with "incorrect passphrase", and so would `secrets set`. Adopting drops the
    salt and every secure value that does not decrypt with your passphrase, keeps everything else,
    and prints the command that sets each dropped value again. The next `secrets set` (or
    `pulumi stack init`) makes a new salt from your passphrase. A file that opens is left alone.
    """
    if bool(tenants) == all_:
        raise click.UsageError("name one or more tenants, or pass --all (not both)")
    settings = Settings.from_env()
    project_dir = settings.project_dir
    chosen = [tenant_of(stack) for stack in select_tenant_stacks(project_dir, None if all_ else tenants)]
    passphrase = read_state_passphrase(settings.passphrase_file)
    paths = [tenant_file(project_dir, tenant) for tenant in chosen]  # every name checked before any write
    results = [adopt_stack_file(path, passphrase, dry_run=dry_run) for path in paths]
    for r in results:
        if r.changed and not dry_run:
            dropped = ", ".join(r.dropped) or "none"
            _audit(settings, tenant_of(r.stack), "adopt", f"salt dropped: {r.salt_dropped}; dropped: {dropped}")
    project = project_name(project_dir)
    state = state_of(settings)
    deployed = {r.stack for r in results if r.salt_dropped and state_key(state, project, r.stack)}
    if as_json:
        out = [
            {
                "stack": r.stack,
                "changed": r.changed,
                "salt_dropped": r.salt_dropped,
                "dropped": list(r.dropped),
                "kept": r.kept,
                "set_again": r.set_again(),
                "deployed": r.stack in deployed,
            }
            for r in results
        ]
        click.echo(json.dumps({"dry_run": dry_run, "stacks": out}, indent=2))
        return
    verb = "would drop" if dry_run else "dropped"
    for r in results:
        if not r.changed:
            click.echo(f"stack {r.stack}: nothing to adopt ({r.kept} secret(s) open with the passphrase file)")
            continue
        what = (["the encryptionsalt (it does not open with the passphrase file)"] if r.salt_dropped else []) + (
            [f"{len(r.dropped)} secret(s) that do not decrypt: {', '.join(r.dropped)}"] if r.dropped else []
        )
        click.echo(f"stack {r.stack}: {verb} {' and '.join(what)}")
        for command in r.set_again():
            click.echo(f"  set again: {command}")
        if r.stack in deployed:
            click.echo(
                f"  note: stack {r.stack} exists in the state backend under the old salt; its state cannot be "
                "decrypted with this passphrase either (restore the old passphrase, or remove and re-create the stack)"
            )


def _audit(settings: Settings, tenant: str, operation: str, detail: str) -> None:
    """One audit line per change: names and counts only, never a value."""
    AuditLog(settings.audit_log).record(
        stack=tenant_stack(tenant), tenant=tenant, operation=operation, result="ok", detail=detail
    )


def _registered(settings: Settings, tenant: str) -> None:
    select_tenant_stacks(settings.project_dir, [tenant])  # UnknownTenantError: a usage error (exit 2)


@secrets.command(name="list")
@click.argument("tenant")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def list_(tenant: str, as_json: bool) -> None:
    """The secret names of TENANT: declared in secret_names, and whether a value is set. Never values."""
    settings = Settings.from_env()
    _registered(settings, tenant)
    stack, states = list_secrets(settings.project_dir, tenant)
    if as_json:
        out = [{"name": s.name, "declared": s.declared, "set": s.set} for s in states]
        click.echo(json.dumps({"stack": stack, "secrets": out}, indent=2))
        return
    if not states:
        click.echo(f"stack {stack}: no secrets declared")
        return
    width = max(len(s.name) for s in states)
    click.echo(f"{'NAME':<{width}}  SET  DECLARED")
    for s in states:
        click.echo(f"{s.name:<{width}}  {'yes' if s.set else 'no ':<3}  {'yes' if s.declared else 'no'}")
    missing = [s.name for s in states if s.declared and not s.set]
    if missing:
        click.echo(f"missing: {', '.join(missing)} (secrets set {tenant} NAME, or secrets import {tenant})")


@secrets.command()
@click.argument("tenant")
@click.argument("name")
def unset(tenant: str, name: str) -> None:
    """Remove the value of secret NAME from TENANT's stack file (it stays declared in secret_names).

    Run `up` for the tenant afterwards: until a new value is set, the Worker has none for NAME.
    """
    settings = Settings.from_env()
    _registered(settings, tenant)
    check_secret_name(tenant, name)
    stack = unset_secret(settings.project_dir, tenant, name)
    _audit(settings, tenant, "secret-unset", f"names: {name}")
    click.echo(f"unset {name} in {tenant_file(settings.project_dir, tenant).name}; run `up` for stack {stack}")


@secrets.command(name="import")
@click.argument("tenant")
@click.option("--add", is_flag=True, help="Also declare in secret_names every name that is not there yet.")
@click.option("--only-declared", is_flag=True, help="Import only names already in secret_names; skip the rest.")
def import_(tenant: str, add: bool, only_declared: bool) -> None:
    """Set many secrets of TENANT at once from stdin: a JSON object of strings, or NAME=value lines.

    For a secret manager's export, e.g.
    `doppler secrets download --no-file --format json | clawdbot-edge secrets import acme --only-declared`.
    All or nothing: the whole input is checked (names, empty values, undeclared names, the
    passphrase) before the stack file is rewritten once. Values are never printed.
    """
    if add and only_declared:
        raise click.UsageError("--add and --only-declared exclude each other")
    settings = Settings.from_env()
    _registered(settings, tenant)
    if sys.stdin.isatty():
        raise click.UsageError("pipe the secrets on stdin (a JSON object or NAME=value lines)")
    values = parse_secrets(sys.stdin.read())
    passphrase = read_state_passphrase(settings.passphrase_file)
    done = import_secrets(settings.project_dir, tenant, values, passphrase, add=add, only_declared=only_declared)
    _audit(settings, tenant, "secret-import", f"names: {', '.join(done.written)}")
    if done.added:
        click.echo(f"added to secret_names of stack {done.stack}: {', '.join(done.added)}")
    if done.skipped:
        click.echo(f"skipped (not declared): {', '.join(done.skipped)}")
    click.echo(
        f"set {len(done.written)} secret(s) in {done.path.name} (encrypted): {', '.join(done.written)}; "
        f"run `up` for stack {done.stack} to deploy them"
    )
