"""`Platform`: what the whole fleet shares, deployed by the `prod` stack."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cf

from orchestrator.core.model import fleet_prefix

TYPE_TOKEN = "clawdbot:edge:Platform"


@dataclass(frozen=True)
class PlatformArgs:
    account_id: str
    """Cloudflare account of the fleet."""
    environment: str
    """Environment name, part of every account-wide resource name."""
    dispatch_namespace: bool = False
    """Create a Workers-for-Platforms dispatch namespace (for fleets beyond 500 Workers)."""


class Platform(pulumi.ComponentResource):
    """Fleet-wide resources; tenant stacks never depend on anything here being deployed first."""

    dispatch_namespace: pulumi.Output[str | None]
    """Name of the dispatch namespace, when enabled."""

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        namespace: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        if args.dispatch_namespace:
            created = cf.WorkersForPlatformsDispatchNamespace(
                f"{name}-dispatch",
                account_id=args.account_id,
                name=fleet_prefix(args.environment),
                opts=pulumi.ResourceOptions(parent=self, protect=True),
            )
            namespace = created.namespace_name
        self.dispatch_namespace = namespace
        self.register_outputs({"dispatch_namespace": self.dispatch_namespace})
