"""Relay keys and the control token of the local edge, generated once and kept 0600.

On Cloudflare the relay key is a `RandomBytes` in Pulumi state, replaced when the tenant's
`relay_key_generation` changes. Locally it is a file per tenant and generation, so a restart keeps
the key (and so the KV envelopes and signed config stay valid) and a rotation makes a new one.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from orchestrator.config.private_files import read_private_file
from orchestrator.core.crypto import RELAY_KEY_BYTES, relay_key_from_b64
from orchestrator.core.errors import ConfigError, CryptoError
from orchestrator.local_edge.layout import StateLayout

TOKEN_BYTES = 32


def _read_private(path: Path, what: str) -> str | None:
    """The file's text, or None when absent; refuses a file that fails the owner-only rule."""
    raw = read_private_file(path, what, missing_ok=True)
    if raw is None:
        return None
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not ASCII text") from None


def _create_private(path: Path, text: str) -> bool:
    """Create `path` 0600 with `text` unless it exists; True when this call created it."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if another process created the file first: the first key wins, never two.
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def relay_key_path(layout: StateLayout, tenant: str, generation: int) -> Path:
    return layout.keys_dir / f"{tenant}.g{generation}"


def relay_key_b64(layout: StateLayout, tenant: str, generation: int) -> str:
    """The tenant's relay key for this generation (standard base64), created on first use."""
    path = relay_key_path(layout, tenant, generation)
    existing = _read_private(path, f"tenant {tenant}: relay key file")
    if existing is None:
        _create_private(path, base64.b64encode(secrets.token_bytes(RELAY_KEY_BYTES)).decode("ascii"))
        existing = _read_private(path, f"tenant {tenant}: relay key file")
    if existing is None:
        raise ConfigError(f"tenant {tenant}: relay key file {path} vanished while being created")
    try:
        relay_key_from_b64(existing)
    except CryptoError:
        raise CryptoError(
            f"tenant {tenant}: relay key file {path} is damaged (not {RELAY_KEY_BYTES} bytes of base64); "
            "delete it to generate a new key (the tenant's local KV envelopes are then rewritten by `local up`)"
        ) from None
    return existing


def control_token(layout: StateLayout) -> str:
    """The control worker's bearer token, created once per state directory."""
    path = layout.control_token
    token = _read_private(path, "local edge control token")
    if token is None:
        _create_private(path, secrets.token_hex(TOKEN_BYTES))
        token = _read_private(path, "local edge control token")
    if not token:
        raise ConfigError(f"local edge control token {path} is empty; delete it and run `local up` again")
    return token
