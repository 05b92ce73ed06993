"""Errors of the local edge (all `EdgeError`s, so the CLI prints them as `Error: …`, exit 1)."""

from __future__ import annotations

from orchestrator.core.errors import EdgeError


class LocalEdgeError(EdgeError):
    """The local runtime could not be started, reached or stopped; the message says which and why."""


class NotRunningError(LocalEdgeError):
    """The local edge is not running (never started, stopped, or its process died)."""
