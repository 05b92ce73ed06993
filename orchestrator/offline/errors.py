"""Errors of the offline path (all `EdgeError`s, so the CLI prints them as `Error: …`, exit 1)."""

from __future__ import annotations

from orchestrator.core.errors import EdgeError


class ProviderRejected(EdgeError):
    """Cloudflare (as modelled) refused a resource; the message names the resource and the rule."""


class PolicyRunError(EdgeError):
    """The pack could not be loaded or run (names the pack path, stack or resource)."""
