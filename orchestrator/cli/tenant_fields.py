"""Every `TenantSpec` field as a `tenants add` flag, and `--from-file` (YAML or JSON) under them.

The file holds the tenant object (what goes under `clawdbot:tenant`); a flag given replaces the
file's value of that field (a repeatable flag, the whole list). Nothing here validates a value:
the one validation is `TenantSpec`'s, which names the field at fault.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator.config.stack_file import read_plain
from orchestrator.config.stack_yaml import MAX_FILE_BYTES

F = TypeVar("F", bound=Callable[..., Any])

# field -> the flag that sets it. `zone` and `limits` are objects: one flag per member.
LIST_FLAGS = {
    "routes": ("--route", "Worker route pattern inside the zone, e.g. 'shop.acme.example.com/*' (repeatable)."),
    "custom_domains": ("--custom-domain", "Hostname inside the zone served as a custom domain (repeatable)."),
    "crons": ("--cron", "Cron schedule, 5 fields, UTC (repeatable, at most 5)."),
    "compatibility_flags": ("--compatibility-flag", "Overrides the platform's compatibility flags (repeatable)."),
    "secret_names": ("--secret-name", "Declare a business secret; set its value with `secrets set` (repeatable)."),
    "egress": ("--egress", "Dispatch mode: a host the Worker may fetch, '*.example.com' allowed (repeatable)."),
}
TEXT_FLAGS = {
    "compatibility_date": ("--compatibility-date", "Overrides the platform's compatibility date (YYYY-MM-DD)."),
    "d1_location_hint": ("--d1-location-hint", "wnam, enam, weur, eeur, apac or oc (replaces the DB if changed)."),
    "d1_read_replication": ("--d1-read-replication", "auto (D1 places read replicas) or disabled (default)."),
    "plan": ("--plan", "Dispatch mode: the platform plan whose limits apply (default: the platform's)."),
    "isolation": ("--isolation", "workers or dispatch: overrides the platform's isolation for this tenant."),
}
INT_FLAGS = {
    "config_version": ("--config-version", "Version of the config (default 1); bump it on every change."),
    "relay_key_generation": ("--relay-key-generation", "Relay key generation (default 1); bump to rotate."),
}
BOOL_FLAGS = {
    "allow_apex_catch_all": ("allow-apex-catch-all", "Allow a route over the whole zone apex (zone/*)."),
    "keep_account_worker": ("keep-account-worker", "Moving to dispatch mode: keep the account Worker serving."),
}
OBJECT_FLAGS = {
    "zone": {"id": "--zone-id", "name": "--zone-name"},
    "limits": {"cpu_ms": "--cpu-ms", "subrequests": "--subrequests"},
}
JSON_FLAGS = {"config": ("--config", 'The business config, a JSON object (e.g. \'{"greeting": "Hello"}\').')}
FLAGGED_FIELDS = {*LIST_FLAGS, *TEXT_FLAGS, *INT_FLAGS, *BOOL_FLAGS, *OBJECT_FLAGS, *JSON_FLAGS}
"""Every TenantSpec field but `id` (the TENANT argument); a test holds this to the model."""


def _param(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def _json_object(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object")
    return parsed


def tenant_field_options(fn: F) -> F:
    """Add a flag for every tenant field, and --from-file."""
    options = [
        click.option(
            "--from-file",
            type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
            help="YAML or JSON file with the tenant's fields (what goes under clawdbot:tenant); '-' reads "
            "stdin. Flags given replace the file's values.",
        ),
        click.option("--zone-id", help="Cloudflare zone id (32 hex)."),
        click.option("--zone-name", help="Zone name, e.g. acme.example.com."),
        click.option("--cpu-ms", type=int, help="CPU time limit per request in ms (Standard usage model)."),
        click.option("--subrequests", type=int, help="Subrequest limit per request."),
    ]
    options += [click.option(flag, _param(flag), multiple=True, help=h) for flag, h in LIST_FLAGS.values()]
    options += [click.option(flag, help=h) for flag, h in TEXT_FLAGS.values()]
    options += [click.option(flag, type=int, help=h) for flag, h in INT_FLAGS.values()]
    options += [click.option(f"--{n}/--no-{n}", default=None, help=h) for n, h in BOOL_FLAGS.values()]
    options += [click.option(flag, callback=_json_object, help=h) for flag, h in JSON_FLAGS.values()]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _read_file(source: Path) -> dict[str, Any]:
    if str(source) == "-":
        data, name = sys.stdin.buffer.read(MAX_FILE_BYTES + 1), "<stdin>"
    else:
        try:
            with source.open("rb") as handle:
                data, name = handle.read(MAX_FILE_BYTES + 1), str(source)
        except OSError as exc:
            raise click.BadParameter(
                f"{source}: {(exc.strerror or str(exc)).lower()}", param_hint="--from-file"
            ) from None
    document = read_plain(name, data)
    if not isinstance(document, dict):
        raise click.BadParameter(
            f"{name}: must hold the tenant object (id, zone, routes, ...), not a {type(document).__name__}",
            param_hint="--from-file",
        )
    return document


def tenant_raw(tenant: str | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """The tenant object from --from-file and the flags (flags win), before validation."""
    raw = _read_file(given["from_file"]) if given.get("from_file") is not None else {}
    if tenant is not None:
        if "id" in raw and raw["id"] != tenant:
            raise click.UsageError(f"TENANT is {tenant!r} but the file's id is {raw['id']!r}")
        raw["id"] = tenant
    elif "id" not in raw:
        raise click.UsageError("name the tenant: TENANT, or an id in --from-file")
    for field, members in OBJECT_FLAGS.items():
        values = {member: given[_param(flag)] for member, flag in members.items() if given[_param(flag)] is not None}
        if values:
            base = raw.get(field)
            raw[field] = {**(base if isinstance(base, dict) else {}), **values}
    for field, (flag, _help) in LIST_FLAGS.items():
        if given[_param(flag)]:
            raw[field] = list(given[_param(flag)])
    for table in (TEXT_FLAGS, INT_FLAGS, JSON_FLAGS):
        for field, (flag, _help) in table.items():
            if given[_param(flag)] is not None:
                raw[field] = given[_param(flag)]
    for field, (name, _help) in BOOL_FLAGS.items():
        if given[name.replace("-", "_")] is not None:
            raw[field] = given[name.replace("-", "_")]
    raw.setdefault("config_version", 1)
    raw.setdefault("config", {})
    return raw
