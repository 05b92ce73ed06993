"""What never leaves this process in clear: the one mask for secret values, and redaction of free text.

`SECRET_MASK` is what a secret config value or output shows as wherever we print one (plans,
`outputs`, the masked stack config). It is also what `pulumi stack output --json` prints for a
secret output without `--show-secrets`, which is how the engine adapter recognises one.
`redact` scrubs credential-looking material from text bound for a log, a report or an
exception; `one_line` bounds it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

SECRET_MASK = "[secret]"
"""A secret value, as shown to people and scripts (never the value, never its length)."""

MAX_DETAIL = 400
"""Longest `detail` kept; an audit line is a summary, the operator reads logs for the rest."""

SENSITIVE_ENV = (
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_API_USER_SERVICE_KEY",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_ACCESS_TOKEN",
)
"""Environment variables whose values must never be written anywhere, even by accident."""

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_AUTH_HEADER = re.compile(r"(?i)(authorization|x-auth-key|x-edge-health-token)(\s*[:=]\s*)\S+")
REDACTED = "[redacted]"
"""What `redact` puts where a credential was."""


def redact(text: str, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> str:
    """Remove credential-looking material and the values of known secret env vars from `text`."""
    env = os.environ if environ is None else environ
    out = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    out = _AUTH_HEADER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, out)
    values = [env.get(name, "") for name in SENSITIVE_ENV] + list(extra)
    # Longest first so a value that contains another is not left half-masked.
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):
        out = out.replace(value, REDACTED)
    return out


def one_line(text: str, limit: int = MAX_DETAIL) -> str:
    """Collapse whitespace to one line and cut it to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def report_line(text: object, limit: int = MAX_DETAIL, *, extra: Iterable[str] = ()) -> str:
    """`text` (a message, an exception) as it may appear in a report, a log or an answer: credentials
    redacted first, then one line of at most `limit` characters. In that order: cutting first could
    leave half a token, which redaction no longer recognises. `extra`: more values to redact."""
    return one_line(redact(str(text), extra=extra), limit)
