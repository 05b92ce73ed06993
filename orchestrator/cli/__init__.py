"""`python -m orchestrator`: the thin command-line door to the control plane.

Each command group lives in its own module and registers itself here; library errors
(`orchestrator.errors.EdgeError`) become `Error: …` and exit 1, usage errors exit 2 (click).
"""

from __future__ import annotations

import click

from orchestrator.cli import plan as _plan


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Clawdbot edge: run a fleet of per-tenant Cloudflare edges from your own server."""


cli.add_command(_plan.plan)


def main() -> None:
    cli(prog_name="python -m orchestrator")
