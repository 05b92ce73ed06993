"""A click group that imports a command's module only when that command runs.

Most commands never evaluate the Pulumi program, and importing `pulumi_cloudflare` alone costs
over a second and ~150 MB on every start (each systemd timer run included). The group's own
`--help` lists commands from the short help kept beside each entry, so it imports nothing;
tests check that those lines match the commands' own docstrings.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import click

from orchestrator.cli.errors import EdgeGroup


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (`module:attribute`) and the one line `--help` shows for it."""

    target: str
    short_help: str

    def load(self) -> click.Command:
        module_name, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):  # a wrong table entry is a bug of ours, say where
            raise TypeError(f"{self.target} is not a click command")
        return command


class LazyGroup(EdgeGroup):
    """`EdgeGroup` whose subcommands are `LazyCommand` entries, loaded on first use."""

    def __init__(self, *args: object, lazy: dict[str, LazyCommand], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.lazy.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        return entry.load()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            entry = self.lazy.get(name)
            if entry is not None:
                rows.append((name, click.utils.make_default_short_help(entry.short_help, limit)))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
