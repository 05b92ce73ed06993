"""How the CLI prints its tables: the terminal's width on a terminal, never cut when piped.

rich sizes a console that is not a terminal to 80 columns (or $COLUMNS) and then folds or
ellipsises cells to fit (rich 14, console.py `Console.size`; `Column.overflow` defaults to
"ellipsis"), so `status | grep`, `tenants list > file` or a systemd journal got URLs and reasons
cut in half. Piped, a table is as wide as its content; `--json` is the form for scripts.
"""

from __future__ import annotations

import sys

from rich.console import Console, RenderableType

UNBOUNDED = 1_000_000
"""Columns of a console that is not a terminal: wider than any row, so nothing is wrapped or cut."""


def table_console() -> Console:
    """A console on stdout: the terminal's own size on a terminal, unbounded otherwise.

    Asks stdout itself rather than `Console.is_terminal`, which FORCE_COLOR or TTY_COMPATIBLE in
    the environment (common in CI) turn on for a pipe too.
    """
    isatty = getattr(sys.stdout, "isatty", None)
    return Console() if isatty is not None and isatty() else Console(width=UNBOUNDED)


def print_table(table: RenderableType) -> None:
    table_console().print(table)
