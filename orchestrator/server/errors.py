"""The control room's own failures (the shared vocabulary is `orchestrator.core.errors`)."""

from __future__ import annotations

from orchestrator.core.errors import EdgeError


class TokenError(EdgeError):
    """The token file is unusable, or a token name is invalid, taken or unknown."""


class JobConflict(EdgeError):
    """A tenant of the request is in a queued or running job."""


class JobNotFound(EdgeError):
    """No job with that id (finished jobs are kept for a while, then forgotten)."""


class NotFound(EdgeError):
    """No such tenant (or page)."""


class Unavailable(EdgeError):
    """What the request needs is not running (the local edge, say)."""
