"""`python -m orchestrator`: the thin command-line door to the control plane.

Each command group lives in its own module and registers itself here; library errors
(`orchestrator.core.errors.EdgeError`) become `Error: …` and exit 1, usage errors exit 2 (click).
"""

from __future__ import annotations

import click

from orchestrator.cli import backup as _backup
from orchestrator.cli import demo as _demo
from orchestrator.cli import doctor as _doctor
from orchestrator.cli import fleet as _fleet
from orchestrator.cli import health as _health
from orchestrator.cli import local as _local
from orchestrator.cli import plan as _plan
from orchestrator.cli import policy as _policy
from orchestrator.cli import secrets as _secrets
from orchestrator.cli import tenants as _tenants
from orchestrator.cli.errors import EdgeGroup


@click.group(cls=EdgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Clawdbot edge: run a fleet of per-tenant Cloudflare edges from your own server.

    Tenants are the Pulumi.prod.<tenant>.yaml files of the project directory
    (CLAWDBOT_PROJECT_DIR, default: this checkout).
    """


cli.add_command(_plan.plan)
cli.add_command(_local.local)
cli.add_command(_demo.demo)
cli.add_command(_health.health)
for _command in _fleet.COMMANDS:
    cli.add_command(_command)
cli.add_command(_policy.policy)
cli.add_command(_tenants.tenants)
cli.add_command(_backup.backup)
cli.add_command(_doctor.doctor)
cli.add_command(_secrets.secrets)


def main() -> None:
    cli(prog_name="python -m orchestrator")
