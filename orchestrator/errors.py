"""Domain errors. Each one's message names what is at fault (stack, tenant, file, field)."""

from __future__ import annotations


class EdgeError(Exception):
    """Base class: the CLI prints these as `Error: <message>` and exits 1."""


class ConfigError(EdgeError):
    """A stack's config is invalid; the message is one line: stack, key path, reason."""


class CryptoError(EdgeError):
    """Decryption or verification failed (never carries key or plaintext material)."""
