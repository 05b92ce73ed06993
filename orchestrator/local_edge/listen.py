"""Can the local edge listen on host:port? Asked before anything is rendered, decrypted or spawned.

workerd reports a taken port only after the runner has started it, as a stack trace in the
runtime log; this check turns the common case into one line naming the address. It binds the way
a server does (SO_REUSEADDR, so a port left in TIME_WAIT by a stopped runtime still counts as
free) and lets go at once; a process that grabs the port in between still fails in workerd.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from orchestrator.local_edge.errors import LocalEdgeError


def _addresses(host: str, port: int) -> list[tuple[socket.AddressFamily, Any]]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise LocalEdgeError(f"cannot listen on {host}:{port}: {exc.strerror or 'unknown host'}") from None
    return [(family, address) for family, _type, _proto, _name, address in found]


def check_listenable(host: str, port: int) -> None:
    """Refuse (LocalEdgeError) when nothing could listen on host:port; port 0 means any free port."""
    if port == 0:
        return
    for family, address in _addresses(host, port):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise LocalEdgeError(
                        f"port {port} on {host} is already in use by another process; "
                        "choose another with --port (0 picks a free one) or stop that process"
                    ) from None
                reason = (exc.strerror or str(exc)).lower()
                raise LocalEdgeError(f"cannot listen on {host}:{port}: {reason}") from None
