"""A tenant's edge in dispatch mode: its Worker as a user Worker in the platform's namespace.

Called by `TenantEdge` instead of the account Worker, its routes, custom domains and cron trigger.
The same bundle (modules, bindings, compatibility settings, limits) goes up through
`NamespacedScript`; the relay key becomes the namespace secret `RELAY_KEY`; the tenant's hostnames
and schedules become entries in the platform's routing KV, written only after the script is in
place so no hostname routes to a script that is not there yet; bring-your-own hostnames get a
`CustomHostname` on the platform's SaaS zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cf

from components.namespaced_script import NamespacedScript, NamespacedScriptArgs
from components.wfp_api import ModuleFile
from orchestrator.core.render import Binding, EdgeBundle


@dataclass(frozen=True)
class DispatchTarget:
    namespace: pulumi.Input[str]
    """The platform's dispatch namespace."""
    routing_kv_id: pulumi.Input[str]
    """The platform's routing KV namespace (a platform stack output)."""
    saas_zone_id: str | None = None
    custom_hostnames: Sequence[str] = field(default_factory=tuple)
    """Hostnames outside the SaaS zone: each becomes a Cloudflare for SaaS custom hostname."""


def upload_binding(binding: Binding, targets: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]] | None:
    """A bundle binding in the upload metadata's shape; None for the relay key (set as a secret)."""
    if binding.type == "kv_namespace":
        return {"type": "kv_namespace", "name": binding.name, "namespace_id": targets[binding.target]}
    if binding.type == "d1":
        # wrangler's shape (create-worker-upload-form.ts); settings read it back as database_id.
        return {"type": "d1", "name": binding.name, "id": targets[binding.target]}
    if binding.type == "secret_text":
        return None
    return {"type": "plain_text", "name": binding.name, "text": binding.target}


def deploy_user_worker(
    name: str,
    parent: pulumi.Resource,
    account_id: pulumi.Input[str],
    bundle: EdgeBundle,
    target: DispatchTarget,
    targets: Mapping[str, pulumi.Input[str]],
    depends_on: Sequence[pulumi.Resource],
) -> pulumi.Output[str]:
    """Register the user Worker, its routing entries and custom hostnames; the script name."""
    limits = {k: v for k, v in (("cpu_ms", bundle.cpu_ms), ("subrequests", bundle.subrequests)) if v is not None}
    bindings = [b for b in (upload_binding(b, targets) for b in bundle.bindings) if b is not None]
    script = NamespacedScript(
        f"{name}-user-worker",
        NamespacedScriptArgs(
            account_id=account_id,
            namespace=target.namespace,
            tenant=bundle.tenant,
            script_name=bundle.script_name,
            main_module=bundle.main_module,
            modules=[ModuleFile(m.name, m.content, m.content_type) for m in bundle.modules],
            bindings=bindings,
            compatibility_date=bundle.compatibility_date,
            compatibility_flags=bundle.compatibility_flags,
            limits=limits or None,
            tags=bundle.tags,
            relay_key=targets["relay_key"],
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
    routed = pulumi.ResourceOptions(parent=parent, depends_on=[script])
    for index, entry in enumerate(bundle.routing):
        cf.WorkersKv(
            f"{name}-routing-{index}",
            account_id=account_id,
            namespace_id=target.routing_kv_id,
            key_name=entry.key,
            value=entry.value,
            metadata=entry.metadata,
            opts=routed,
        )
    if target.saas_zone_id is not None:
        for index, hostname in enumerate(target.custom_hostnames):
            cf.CustomHostname(
                f"{name}-hostname-{index}",
                zone_id=target.saas_zone_id,
                hostname=hostname,
                ssl=cf.CustomHostnameSslArgs(method="http", type="dv"),
                opts=routed,
            )
    return script.script_name
