"""How the CLI reports failures: one `Error: <message>` line and the exit status of the README's table.

0 ok · 1 a tenant failed or drifted, or a domain or OS error · 2 usage error (an unknown tenant too)
· 130 interrupted (Ctrl-C).
A leaf module, so command groups can use it without importing the whole CLI.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from orchestrator.core.errors import EdgeError, UnknownTenantError

INTERRUPTED = 130
"""128 + SIGINT, what a shell reports for a command stopped with Ctrl-C."""


def os_error_line(exc: OSError) -> str:
    """`permission denied: /etc/clawdbot/passphrase` rather than a traceback (read-only, full disk, ...)."""
    reason = (exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)).lower()
    where = exc.filename if exc.filename is not None else ""
    return f"{reason}: {where}" if where else reason


@contextmanager
def translated() -> Iterator[None]:
    """Domain and OS errors become `Error: …` (exit 1), an unknown tenant a usage error (exit 2);
    Ctrl-C exits 130 without a traceback."""
    try:
        yield
    except UnknownTenantError as exc:  # the user named a tenant that is not there: usage, like a bad option
        raise click.UsageError(str(exc)) from None
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        raise click.exceptions.Exit(INTERRUPTED) from None
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # the reader went away (`| head`): click's own quiet exit
            raise
        raise click.ClickException(os_error_line(exc)) from None


class EdgeGroup(click.Group):
    """Reports failures of any subcommand as `translated` says."""

    def invoke(self, ctx: click.Context) -> Any:
        with translated():
            return super().invoke(ctx)


class EdgeCommand(click.Command):
    """The same for a command that is not part of a group."""

    def invoke(self, ctx: click.Context) -> Any:
        with translated():
            return super().invoke(ctx)
