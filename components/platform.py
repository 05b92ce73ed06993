"""`Platform`: what the whole fleet shares, deployed by the `prod` stack.

In `dispatch` mode (Workers for Platforms, reference/scale.md §1, §5a) it also holds the dispatch
namespace (protected: renaming replaces it and deleting it deletes every user Worker), the routing KV
the tenant stacks write their hostnames into, the outbound Worker, the dispatch Worker with the
namespace binding (outbound parameters `tenant`, `egress`) and its every-minute cron fan-out, and,
with a SaaS zone, the `*/*` route to the dispatcher and the fallback origin for custom hostnames.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cf

from orchestrator.core.dispatch import DISPATCHER_CRON, DISPATCHER_MAIN, OUTBOUND_MAIN, DispatchModule

TYPE_TOKEN = "clawdbot:edge:Platform"
MODULE_CONTENT_TYPE = "application/javascript+module"


@dataclass(frozen=True)
class DispatchArgs:
    namespace: str
    """Dispatch namespace name (`clawdbot-<env>`)."""
    dispatcher_name: str
    outbound_name: str
    routes_title: str
    """Title of the routing KV namespace."""
    modules: Sequence[DispatchModule]
    """worker_src/src/dispatch/ plus the rendered settings (orchestrator.core.dispatch.dispatch_modules)."""
    compatibility_date: str
    namespace_binding: str
    routes_binding: str
    outbound_params: Sequence[str]
    saas_zone_id: str | None = None
    fallback_origin: str | None = None


@dataclass(frozen=True)
class PlatformArgs:
    account_id: str
    """Cloudflare account of the fleet."""
    environment: str
    """Environment name, part of every account-wide name."""
    dispatch: DispatchArgs | None = None
    """Workers-for-Platforms isolation (`clawdbot:platform.isolation: dispatch`); None in workers mode."""


def _script(
    name: str,
    args: PlatformArgs,
    dispatch: DispatchArgs,
    script_name: pulumi.Input[str],
    main: str,
    opts: pulumi.ResourceOptions,
    bindings: Sequence[cf.WorkersScriptBindingArgs] = (),
) -> cf.WorkersScript:
    by_name = {m.name: m for m in dispatch.modules}
    files = {
        m.name: cf.WorkersScriptFilesArgs(
            content_type=MODULE_CONTENT_TYPE, content_base64=base64.b64encode(m.content.encode()).decode()
        )
        for m in dispatch.modules
        if m.name != main
    }
    return cf.WorkersScript(
        name,
        account_id=args.account_id,
        script_name=script_name,
        main_module=main,
        content=by_name[main].content,
        files=files,
        compatibility_date=dispatch.compatibility_date,
        bindings=list(bindings),
        opts=opts,
    )


class Platform(pulumi.ComponentResource):
    """Fleet-wide resources; in workers mode tenant stacks need nothing from here."""

    dispatch_namespace: pulumi.Output[str | None]
    """Name of the dispatch namespace (dispatch mode)."""
    routing_kv_id: pulumi.Output[str | None]
    """Id of the routing KV namespace the tenant stacks write to (dispatch mode)."""
    dispatcher: pulumi.Output[str | None]
    """Script name of the dispatch Worker (dispatch mode)."""

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        namespace: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        routing_kv: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        dispatcher_name: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        d = args.dispatch
        if d is not None:
            created = cf.WorkersForPlatformsDispatchNamespace(
                f"{name}-dispatch",
                account_id=args.account_id,
                name=d.namespace,
                opts=pulumi.ResourceOptions(parent=self, protect=True),
            )
            routes = cf.WorkersKvNamespace(
                f"{name}-routes", account_id=args.account_id, title=d.routes_title, opts=child
            )
            outbound = _script(f"{name}-outbound", args, d, d.outbound_name, OUTBOUND_MAIN, child)
            dispatcher = _script(
                f"{name}-dispatcher",
                args,
                d,
                d.dispatcher_name,
                DISPATCHER_MAIN,
                child,
                bindings=[
                    cf.WorkersScriptBindingArgs(
                        name=d.namespace_binding,
                        type="dispatch_namespace",
                        namespace=created.namespace_name,
                        # On WorkersScript the params are plain strings (on WorkerVersion they are objects).
                        outbound=cf.WorkersScriptBindingOutboundArgs(
                            worker=cf.WorkersScriptBindingOutboundWorkerArgs(service=outbound.script_name),
                            params=list(d.outbound_params),
                        ),
                    ),
                    cf.WorkersScriptBindingArgs(name=d.routes_binding, type="kv_namespace", namespace_id=routes.id),
                ],
            )
            # User-Worker cron triggers are not GA: the dispatcher runs every minute and fans out.
            cf.WorkersCronTrigger(
                f"{name}-dispatcher-cron",
                account_id=args.account_id,
                script_name=dispatcher.script_name,
                schedules=[cf.WorkersCronTriggerScheduleArgs(cron=DISPATCHER_CRON)],
                opts=child,
            )
            if d.saas_zone_id is not None and d.fallback_origin is not None:
                # `*/*`, not a hostname pattern: with O2O, proxied and DNS-only records route differently.
                cf.WorkersRoute(
                    f"{name}-catch-all",
                    zone_id=d.saas_zone_id,
                    pattern="*/*",
                    script=dispatcher.script_name,
                    opts=child,
                )
                cf.CustomHostnameFallbackOrigin(
                    f"{name}-fallback-origin", zone_id=d.saas_zone_id, origin=d.fallback_origin, opts=child
                )
            namespace = created.namespace_name
            routing_kv = routes.id
            dispatcher_name = dispatcher.script_name
        self.dispatch_namespace = namespace
        self.routing_kv_id = routing_kv
        self.dispatcher = dispatcher_name
        self.register_outputs(
            {
                "dispatch_namespace": self.dispatch_namespace,
                "routing_kv_id": self.routing_kv_id,
                "dispatcher": self.dispatcher,
            }
        )
