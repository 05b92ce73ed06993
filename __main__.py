"""Pulumi entry point: `pulumi up` on `prod` (platform) or `prod.<tenant>` (one tenant's edge)."""

from orchestrator.program import pulumi_program

pulumi_program()
