"""`serve`: the control room (HTTP API and live page), and `serve token add|list|remove`.

The server itself is `orchestrator.server`; this door parses, calls and prints. FastAPI and
uvicorn are imported only when the server starts, so other commands do not pay for them.
"""

from __future__ import annotations

import json

import click

from orchestrator.config.settings import Settings
from orchestrator.fleet.audit import AuditLog
from orchestrator.server.serve import DEFAULT_HOST, DEFAULT_PORT, ServeConfig, check_bind
from orchestrator.server.tokens import TokenStore


@click.group(invoke_without_command=True)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option(
    "--expose", is_flag=True, help="Allow a --host that is not loopback (then front it with TLS, as described above)."
)
@click.option(
    "--health",
    "health_mode",
    type=click.Choice(["auto", "local", "remote"]),
    default="auto",
    show_default=True,
    help="Where the page's health comes from: the local edge, the deployed Workers, or auto (as `health`).",
)
@click.option(
    "--watch-interval",
    type=click.FloatRange(0.5, 3600),
    default=15.0,
    show_default=True,
    help="Seconds between two rounds of status and health behind the page.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(1, 10_000),
    default=30,
    show_default=True,
    help="State-changing requests per minute per token (bursts of up to 10).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    expose: bool,
    health_mode: str,
    watch_interval: float,
    rate_limit: int,
) -> None:
    """Serve the control room: a JSON API (schema at /api/openapi.json) and the live architecture page.

    Listens on 127.0.0.1 only, unless --host names another address and --expose confirms it.
    Every route but /api/live and the page's shell needs a bearer token (`serve token add NAME`).

    \b
    Reach it without opening a port:
      ssh -N -L 8790:127.0.0.1:8790 <user>@<vps>, then http://127.0.0.1:8790/
    or Cloudflare Tunnel + Access (dials out), or a reverse proxy with TLS on the VPS.
    """
    if ctx.invoked_subcommand is not None:
        return
    advice = check_bind(host, port, expose=expose)
    if advice:
        click.echo(advice, err=True)
    from orchestrator.server.app import create_app
    from orchestrator.server.library import Library
    from orchestrator.server.serve import run

    settings = Settings.from_env()
    store = TokenStore(settings.tokens_file)
    if not store.list():
        click.echo(f"no tokens yet in {settings.tokens_file}: create one with `serve token add NAME`", err=True)
    config = ServeConfig(
        host=host, port=port, watch_interval_s=watch_interval, health_mode=health_mode, rate_per_minute=rate_limit
    )
    click.echo(f"control room on http://{host}:{port}/ (tokens: {settings.tokens_file})", err=True)
    run(create_app(Library(settings), config), host, port)


@serve.group()
def token() -> None:
    """Bearer tokens of the control room: one per client, hashed in a 0600 file, no restart needed."""


def _store() -> tuple[Settings, TokenStore]:
    settings = Settings.from_env()
    return settings, TokenStore(settings.tokens_file)


@token.command("add")
@click.argument("name")
def add(name: str) -> None:
    """Create a token for client NAME and print it, alone, on stdout: it is never shown again."""
    settings, store = _store()
    value = store.add(name)
    AuditLog(settings.audit_log).record(stack="fleet", operation="serve-token", result="added", detail=f"token {name}")
    click.echo(value)
    click.echo(
        f"token {name!r} added to {store.path}; it is shown once: keep it in the client's secret store", err=True
    )


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def list_tokens(as_json: bool) -> None:
    """The tokens' names and creation times (never the tokens, never their hashes)."""
    _, store = _store()
    tokens = store.list()
    if as_json:
        rows = [{"name": t.name, "created": t.created.isoformat(timespec="seconds")} for t in tokens]
        click.echo(json.dumps(rows, indent=2))
        return
    if not tokens:
        click.echo(f"no tokens in {store.path}")
    for t in tokens:
        click.echo(f"{t.name}\t{t.created.isoformat(timespec='seconds')}")


@token.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Revoke client NAME's token: the running server refuses it from its next request on."""
    settings, store = _store()
    store.remove(name)
    AuditLog(settings.audit_log).record(
        stack="fleet", operation="serve-token", result="removed", detail=f"token {name}"
    )
    click.echo(f"token {name!r} removed", err=True)
