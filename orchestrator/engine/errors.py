"""Engine failures as domain errors: one line naming the stack, the operation and what to do.

Transient failures (busy stack, engine RPC hiccups, pulumi#7782) become `TransientStackError` so the
fleet retries them; a missing CLI becomes `PulumiCliMissingError` with the install hint.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pulumi.automation import errors as auto_errors

from orchestrator.core.errors import (
    EdgeError,
    PulumiCliMissingError,
    StackBusyError,
    StackError,
    StackMissingError,
    TransientStackError,
)
from orchestrator.core.masking import report_line
from orchestrator.core.names import tenant_flag, tenant_of
from orchestrator.engine.setup import install_hint
from orchestrator.fleet.ports import Operation

TRANSIENT_MARKERS = ("UNAVAILABLE", "connection reset", "i/o timeout", "TLS handshake timeout", "429 Too Many")
"""Engine/provider failures that a later retry may not hit (pulumi#7782: gRPC UNAVAILABLE)."""


def error_lines(text: str) -> str:
    """The lines of CLI output that say what went wrong, without the surrounding noise."""
    keep = [line.strip() for line in text.splitlines() if re.search(r"\berror\b|failed|refused|denied", line, re.I)]
    return " | ".join(dict.fromkeys(keep[-4:])) or text.strip()[-300:]


def _is_cli_binary(filename: object, cli: str | None) -> bool:
    if not isinstance(filename, (str, os.PathLike)):
        return False
    name = os.fspath(filename)
    return name == cli or Path(name).name in ("pulumi", "pulumi.exe")


def map_error(exc: BaseException, stack: str, operation: Operation, *, cli: str | None = None) -> EdgeError:
    """Turn an Automation API exception into our error naming the stack, tenant and next step."""
    who = f"stack {stack} (tenant {tenant_of(stack)})"
    if isinstance(exc, auto_errors.ConcurrentUpdateError):
        return StackBusyError(
            f"{who}: {operation} refused, another update holds the stack lock; if no update is running, "
            f"run `python -m orchestrator recover {tenant_flag(stack)}`"
        )
    if isinstance(exc, auto_errors.StackNotFoundError):
        return StackMissingError(
            f"{who}: no such stack in the state backend; "
            f"create it with `python -m orchestrator up {tenant_flag(stack)}`"
        )
    if isinstance(exc, auto_errors.CommandError):
        detail = report_line(error_lines(str(exc)))
        kind = {
            auto_errors.InlineSourceRuntimeError: "the Pulumi program failed",
            auto_errors.RuntimeError: "the Pulumi program failed",
            auto_errors.CompilationError: "the Pulumi program failed",
        }.get(type(exc), f"pulumi {operation} failed")
        message = f"{who}: {kind}: {detail} (full output: {operation} log in the stack's work dir)"
        if any(marker in str(exc) for marker in TRANSIENT_MARKERS):
            return TransientStackError(message)
        return StackError(message)
    if isinstance(exc, FileNotFoundError) and _is_cli_binary(exc.filename, cli):
        return PulumiCliMissingError(f"{who}: Pulumi CLI not found: {install_hint()}")
    if isinstance(exc, FileNotFoundError):
        missing = exc.filename if exc.filename is not None else "a file"
        return StackError(f"{who}: {operation} failed: {missing} does not exist")
    return StackError(f"{who}: {operation} failed: {type(exc).__name__}: {report_line(exc)}")
