"""Apply a tenant's D1 migrations in order, exactly once, as part of `pulumi up`.

Why a dynamic resource: the Cloudflare provider has no migrations resource (TF#7347), and running
`wrangler d1 migrations apply` beside Pulumi splits one deploy into two tools. This resource calls
the D1 HTTP query API with wrangler's bookkeeping (`d1_migrations`), so wrangler and we agree on
what was applied. It depends on the database and the Worker depends on it: schema before code.
Deleting it changes nothing in the database (data outlives the deploy; the database is protected).

Credentials: the `api_token` input (from `cloudflare:apiToken`, kept secret in state) or the
provider-standard `CLOUDFLARE_API_TOKEN`; endpoint `CLOUDFLARE_BASE_URL` like the provider, so the
fleet's throttling proxy covers these calls too.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic

from components.cloudflare_http import TransportError, envelope, send
from orchestrator.core.cloudflare_api import PUBLIC_API_URL, api_base_url
from orchestrator.core.errors import MigrationError
from orchestrator.core.migrations import Migration, apply_migrations

HTTP_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class D1HttpExecutor:
    """Runs SQL through `POST /accounts/{account}/d1/database/{database}/query`.

    Every way the call can fail (refused, reset, timed out, an error status, a 2xx answer that is not
    the API's JSON envelope) is a MigrationError naming the database, never a raw exception: the
    dynamic provider's host would print a traceback and the operator would not know which tenant.
    """

    account_id: str
    database_id: str
    api_token: str
    base_url: str = PUBLIC_API_URL
    timeout_seconds: float = HTTP_TIMEOUT_SECONDS

    def query(self, sql: str) -> list[dict[str, object]]:
        url = f"{self.base_url.rstrip('/')}/accounts/{self.account_id}/d1/database/{self.database_id}/query"
        request = urllib.request.Request(
            url,
            data=json.dumps({"sql": sql}).encode(),
            headers={"Authorization": f"Bearer {self.api_token}", "Content-Type": "application/json"},
            method="POST",
        )
        where = f"D1 database {self.database_id}"
        unsure = "the query may have run: re-run `up`, migrations already recorded are skipped"
        try:
            status, raw = send(
                request, timeout=self.timeout_seconds, where=where, base_url=self.base_url, unsure=unsure
            )
        except TransportError as exc:
            raise MigrationError(str(exc)) from None
        if not 200 <= status < 300:
            raise MigrationError(f"{where}: query failed with HTTP {status}: {_api_errors(raw)}")
        return _rows(raw, where)


def _rows(raw: bytes, where: str) -> list[dict[str, object]]:
    """The last statement's rows from the API envelope `{success, errors, result: [{results}]}`."""
    try:
        body = envelope(raw, where)
    except TransportError as exc:
        raise MigrationError(str(exc)) from None
    if body.get("success") is not True:
        raise MigrationError(f"{where}: query failed: {_api_errors(body)}")
    results = body.get("result") or []
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise MigrationError(f"{where}: the API's result is not a list of statement results")
    rows = results[-1].get("results", []) if results else []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise MigrationError(f"{where}: the API's rows are not a list of objects")
    return rows


def _api_errors(body: bytes | dict[str, Any]) -> str:
    try:
        data = json.loads(body) if isinstance(body, bytes) else body
        return "; ".join(str(e.get("message", e)) for e in data.get("errors", [])) or "no detail"
    except (ValueError, AttributeError, TypeError):
        return "unreadable error body"


def _migrations(props: dict[str, Any]) -> list[Migration]:
    return [Migration(**m) for m in props["migrations"]]


def _executor(props: dict[str, Any]) -> D1HttpExecutor:
    token = props.get("api_token") or os.environ.get("CLOUDFLARE_API_TOKEN")
    if not token:
        raise MigrationError(
            f"D1 database {props['database_id']}: no API token to apply migrations; "
            "set cloudflare:apiToken (secret) or CLOUDFLARE_API_TOKEN"
        )
    return D1HttpExecutor(
        account_id=props["account_id"],
        database_id=props["database_id"],
        api_token=token,
        base_url=api_base_url(os.environ),
    )


def _check_unchanged(old: list[dict[str, Any]], new: list[Migration], database: str) -> None:
    new_by_name = {m.name: m.sha256 for m in new}
    for applied in old:
        if applied["name"] in new_by_name and new_by_name[applied["name"]] != applied["sha256"]:
            raise MigrationError(
                f"D1 database {database}: migration {applied['name']} was edited after it was applied; "
                "add a new migration instead"
            )


class D1MigrationsProvider(pulumi.dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        applied = apply_migrations(_executor(props), _migrations(props), props["database_id"])
        return pulumi.dynamic.CreateResult(
            id_=f"{props['account_id']}/{props['database_id']}", outs={**props, "applied_now": applied}
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        # The token is a credential, not desired state: rotating it must not touch the database.
        keys = ("account_id", "database_id", "migrations")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        replaces = [k for k in ("account_id", "database_id") if k in changed]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        migrations = _migrations(news)
        _check_unchanged(olds.get("migrations", []), migrations, news["database_id"])
        applied = apply_migrations(_executor(news), migrations, news["database_id"])
        return pulumi.dynamic.UpdateResult(outs={**news, "applied_now": applied})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: schema changes stay with the (protected) database."""


class D1Migrations(pulumi.dynamic.Resource):
    """Applies `worker_src/migrations/*.sql` to one D1 database, recorded in `d1_migrations`."""

    applied_now: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        account_id: pulumi.Input[str],
        database_id: pulumi.Input[str],
        migrations: list[Migration],
        api_token: pulumi.Input[str] | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "account_id": account_id,
            "database_id": database_id,
            "migrations": [m.model_dump() for m in migrations],
            "api_token": pulumi.Output.secret(api_token) if api_token is not None else None,
            "applied_now": None,
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=["api_token"])
        super().__init__(D1MigrationsProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts))
