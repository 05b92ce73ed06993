"""Binding and running: loopback by default; anything else only when asked for, with how to front it.

The VPS needs no inbound port from the internet: the control room listens on 127.0.0.1 and is
reached through an SSH tunnel or a tunnel daemon that dials out. Binding another address is
refused unless `--expose` says so, and even then the server speaks plain HTTP: the token would
cross the network in clear unless something with TLS stands in front.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.server.library import EdgeError, is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8790


@dataclass(frozen=True)
class ServeConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    watch_interval_s: float = 15.0
    health_mode: str = "auto"
    rate_per_minute: int = 30
    rate_burst: int = 10


FRONTING = """\
The control room speaks plain HTTP and should not face a network by itself. Front it with one of:
  - an SSH tunnel from your machine:  ssh -N -L {port}:127.0.0.1:{port} <user>@<vps>  (then http://127.0.0.1:{port}/)
  - Cloudflare Tunnel + Access: cloudflared dials out, so the VPS still opens no inbound port;
    put an Access policy in front, and keep this server on 127.0.0.1
  - a reverse proxy with TLS (Caddy, nginx) on the VPS, forwarding to 127.0.0.1:{port}
Bearer tokens travel in every request: never expose this port without TLS in front."""


def check_bind(host: str, port: int, *, expose: bool) -> str | None:
    """None for a loopback bind; the fronting advice for an exposed one; an error otherwise."""
    if is_loopback(host):
        return None
    if not expose:
        raise EdgeError(
            f"refusing to listen on {host}:{port}, which is not a loopback address: pass --expose to mean it "
            "(and front it with TLS; see `serve --help`), or keep the default 127.0.0.1 and use an SSH tunnel"
        )
    return f"listening on {host}:{port}, beyond this machine.\n" + FRONTING.format(port=port)


def run(app: object, host: str, port: int) -> None:
    import uvicorn

    # One process: the jobs, the watcher and the event hub live in it (workers would split them).
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        workers=1,
        proxy_headers=False,
        server_header=False,
        date_header=True,
        access_log=True,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
