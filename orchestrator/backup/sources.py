"""What each kind of backup holds, from the settings."""

from __future__ import annotations

from orchestrator.backup.snapshot import Source
from orchestrator.config.settings import Settings

STACK_CONFIG_PATTERNS = ("Pulumi.yaml", "Pulumi.*.yaml")


def state_sources(settings: Settings) -> list[Source]:
    """The Pulumi state directory and the stack config files (the tenant registry and its secrets)."""
    return [
        Source("state", settings.state_dir),
        Source("config", settings.project_dir, STACK_CONFIG_PATTERNS),
    ]


def escrow_sources(settings: Settings) -> list[Source]:
    """The state passphrase file alone: losing it makes every state backup useless."""
    path = settings.passphrase_file
    return [Source("escrow", path.parent, (path.name,))]
