"""Network addresses the control plane judges: whether plain http may be allowed to a host.

Callers (`serve`'s bind check, the R2 state backend's and the backups' endpoint checks) allow
plain http, or a bind without `--expose`, only where `is_loopback` says so, and refuse anything
else. So it answers True only for a host that cannot mean another machine, written the one way
each caller passes it (a URL's `hostname`, or `--host` as given): `localhost` and literal loopback
addresses. Every other spelling a resolver might still map to loopback (`127.1`, `0x7f.0.0.1`,
`localhost.`, `LOCALHOST`, `[::1]`) is refused, which costs the operator one clear error instead
of trusting a name to a resolver or a parser that reads it differently.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback IP (127.0.0.0/8, ::1, and 127.0.0.0/8 mapped into IPv6)."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # ::ffff:127.0.0.1 is 127.0.0.1 on a dual-stack socket; CPython's is_loopback says so only
    # from 3.13 on (python/cpython#117566), so this does not depend on the interpreter.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback
