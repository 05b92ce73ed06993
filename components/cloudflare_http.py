"""One HTTPS call to the Cloudflare API from a dynamic resource, and how it can fail, told once.

The D1 migrations (`d1_migrations`) and the Workers-for-Platforms calls (`wfp_api`) go to the REST
API directly. Either way a call ends in one of: an answer (any status: the caller reads its error
envelope), refused or unreachable, no answer in time (the request may have been applied), or a
connection that broke mid-answer. `send` turns the last three into one `TransportError` line naming
what was being done and where; each caller re-raises it as its own error class.

The endpoint is the Cloudflare provider's: `CLOUDFLARE_BASE_URL` (the fleet's throttling proxy)
or the public API (`orchestrator.core.cloudflare_api`).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any


class TransportError(Exception):
    """The call got no complete answer; the message is one line naming what and where."""


def send(
    request: urllib.request.Request, *, timeout: float, where: str, base_url: str, unsure: str
) -> tuple[int, bytes]:
    """(status, body) of `request`, error statuses included; `unsure`: what to do when the request
    may have been applied without an answer (after a read timeout)."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc)
    except urllib.error.URLError as exc:
        reason = "timed out" if isinstance(exc.reason, TimeoutError) else exc.reason
        raise TransportError(f"{where}: cannot reach {base_url}: {reason}") from None
    except TimeoutError:
        # Raised by the read, after the request was sent: Cloudflare may have acted on it.
        raise TransportError(f"{where}: no answer from {base_url} within {timeout:g} s; {unsure}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise TransportError(f"{where}: connection to {base_url} broke ({exc.__class__.__name__})") from None


def _body(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except (OSError, http.client.HTTPException):
        return b""


def envelope(raw: bytes, where: str) -> dict[str, Any]:
    """The API's JSON envelope (`{success, errors, result}`) of an answer, or TransportError."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise TransportError(f"{where}: the API answered with something that is not JSON") from None
    if not isinstance(data, dict):
        raise TransportError(f"{where}: the API answered with JSON that is not an object")
    return data
