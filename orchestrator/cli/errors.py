"""How the CLI reports domain errors: `Error: <message>` and exit status 1 (usage errors stay 2).

A leaf module, so command groups can use it without importing the whole CLI.
"""

from __future__ import annotations

from typing import Any

import click

from orchestrator.core.errors import EdgeError


class EdgeGroup(click.Group):
    """Turns domain errors from any subcommand into click's `Error: …` with exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeError as exc:
            raise click.ClickException(str(exc)) from None


class EdgeCommand(click.Command):
    """The same for a command that is not part of a group."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeError as exc:
            raise click.ClickException(str(exc)) from None
