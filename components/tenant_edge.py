"""`TenantEdge`: one tenant's isolated Cloudflare edge, deployed from its `EdgeBundle`.

Children (all parented here, named `<name>-<role>`): relay key, KV namespace, signed config and
secret envelopes in KV, D1 database (protected) and its migrations, then in `workers` mode the
Worker script, routes, custom domains and the cron trigger, in `dispatch` mode the user Worker in
the platform's namespace and its routing entries (components/user_worker.py).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cf
import pulumi_random as random

from components.d1_migrations import D1Migrations
from components.user_worker import DispatchTarget, deploy_user_worker
from orchestrator.core import crypto
from orchestrator.core.contract import contract
from orchestrator.core.render import Binding, EdgeBundle

TYPE_TOKEN = "clawdbot:edge:TenantEdge"
RELAY_KEY_BYTES = 32


@dataclass(frozen=True)
class TenantEdgeArgs:
    bundle: EdgeBundle
    """What to deploy, rendered from the tenant's TenantSpec (orchestrator.core.render)."""
    account_id: pulumi.Input[str]
    """Cloudflare account holding the tenant's Worker, KV and D1."""
    zone_id: str
    """Zone of the tenant's routes and custom domains."""
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Business secret values by name (Pulumi secrets); only their envelopes leave this program."""
    api_token: pulumi.Input[str] | None = None
    """Token for the D1 migration step (else CLOUDFLARE_API_TOKEN); never logged, secret in state."""
    protect_database: bool = True
    """Renaming or moving a D1 database deletes its data; protection makes that an explicit act."""
    dispatch: DispatchTarget | None = None
    """Where a dispatch-mode bundle goes (the platform's namespace and routing KV)."""


def _secret(value: pulumi.Input[str]) -> pulumi.Output[str]:
    result: pulumi.Output[str] = pulumi.Output.secret(value)
    return result


def _seal(args: list[str], tenant: str, name: str) -> str:
    relay_b64, plaintext = args
    return crypto.seal_secret(crypto.relay_key_from_b64(relay_b64), tenant, name, plaintext)


def _sign(relay_b64: str, tenant: str, payload: str) -> str:
    return crypto.sign_config(crypto.relay_key_from_b64(relay_b64), tenant, payload)


def _module_file(content: str, content_type: str) -> cf.WorkersScriptFilesArgs:
    return cf.WorkersScriptFilesArgs(
        content_type=content_type, content_base64=base64.b64encode(content.encode()).decode()
    )


class TenantEdge(pulumi.ComponentResource):
    """A tenant's Worker with its own KV, D1, routes, domains, crons and relayed secrets."""

    script_name: pulumi.Output[str]
    """Name of the tenant's Worker script."""
    kv_namespace_id: pulumi.Output[str]
    """Id of the tenant's KV namespace (config and secret envelopes)."""
    d1_database_id: pulumi.Output[str]
    """UUID of the tenant's D1 database."""
    bundle_hash: pulumi.Output[str]
    """Hash of the deployed bundle; equal hashes mean nothing changed (fleet change detection)."""

    def __init__(self, name: str, args: TenantEdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        bundle = args.bundle
        child = pulumi.ResourceOptions(parent=self)
        missing = sorted(set(bundle.secret_names) - set(args.secrets))
        if missing:
            raise ValueError(f"TenantEdge {name}: no value for secret(s) {', '.join(missing)}")

        relay = random.RandomBytes(
            f"{name}-relay-key",
            length=RELAY_KEY_BYTES,
            # Changing the generation replaces the key; every value derived from it below is
            # recomputed in the same update, which is the whole rotation.
            keepers={"tenant": bundle.tenant, "generation": str(bundle.relay_key_generation)},
            opts=child,
        )
        relay_b64 = _secret(relay.base64)

        kv = cf.WorkersKvNamespace(f"{name}-kv", account_id=args.account_id, title=bundle.kv_title, opts=child)
        secret_value = pulumi.ResourceOptions(parent=self, additional_secret_outputs=["value"])
        kv_entries: list[pulumi.Resource] = []
        config_entry = cf.WorkersKv(
            f"{name}-config",
            account_id=args.account_id,
            namespace_id=kv.id,
            key_name=next(e.key for e in bundle.kv_entries if e.kind == "config"),
            value=_secret(relay_b64.apply(lambda k: _sign(k, bundle.tenant, bundle.config_payload))),
            opts=secret_value,
        )
        kv_entries.append(config_entry)
        for entry in bundle.kv_entries:
            if entry.kind != "secret" or entry.secret_name is None:
                continue
            secret_name = entry.secret_name
            envelope: pulumi.Output[str] = pulumi.Output.all(relay_b64, _secret(args.secrets[secret_name])).apply(
                functools.partial(_seal, tenant=bundle.tenant, name=secret_name)
            )
            secret_entry = cf.WorkersKv(
                f"{name}-secret-{secret_name.lower().replace('_', '-')}",
                account_id=args.account_id,
                namespace_id=kv.id,
                key_name=entry.key,
                value=_secret(envelope),
                opts=secret_value,
            )
            kv_entries.append(secret_entry)

        database = cf.D1Database(
            f"{name}-db",
            account_id=args.account_id,
            name=bundle.d1_name,
            primary_location_hint=bundle.d1_location_hint,
            # Always explicit: up to TF provider v5.22 the attribute is optional, not computed, and
            # Read copies the API's object into state, so an unset one is a diff after every refresh.
            read_replication=cf.D1DatabaseReadReplicationArgs(mode=bundle.d1_read_replication),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect_database),
        )
        migrations = D1Migrations(
            f"{name}-migrations",
            account_id=args.account_id,
            database_id=database.id,
            migrations=list(bundle.migrations),
            api_token=args.api_token,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[database]),
        )

        targets: dict[str, pulumi.Input[str]] = {"kv": kv.id, "d1": database.id, "relay_key": relay_b64}
        if bundle.isolation == "dispatch":
            if args.dispatch is None:
                raise ValueError(f"TenantEdge {name}: a dispatch-mode bundle needs TenantEdgeArgs.dispatch")
            script_name = deploy_user_worker(
                name, self, args.account_id, bundle, args.dispatch, targets, [migrations, *kv_entries]
            )
            if bundle.keep_account_worker:
                # A move in progress: the account Worker keeps its hostnames until DNS points at the
                # SaaS zone, so they never answer nothing (docs/dispatch-mode.md).
                self._account_worker(name, args, targets, [migrations, *kv_entries])
        else:
            script_name = self._account_worker(name, args, targets, [migrations, *kv_entries])

        self.script_name = script_name
        self.kv_namespace_id = kv.id
        self.d1_database_id = database.id
        self.bundle_hash = pulumi.Output.from_input(bundle.bundle_hash)
        # The CLI waits for these before it marks the component created.
        self.register_outputs(
            {
                "script_name": self.script_name,
                "kv_namespace_id": self.kv_namespace_id,
                "d1_database_id": self.d1_database_id,
                "bundle_hash": self.bundle_hash,
            }
        )

    def _account_worker(
        self,
        name: str,
        args: TenantEdgeArgs,
        targets: Mapping[str, pulumi.Input[str]],
        depends_on: list[pulumi.Resource],
    ) -> pulumi.Output[str]:
        """Workers mode: an account Worker with its routes, custom domains and cron trigger."""
        bundle = args.bundle
        child = pulumi.ResourceOptions(parent=self)
        main = bundle.module(bundle.main_module)
        # The bundle is one linked module: no `files` then (unset, as the provider leaves it, not {}).
        files = {m.name: _module_file(m.content, m.content_type) for m in bundle.modules if m is not main}
        # An account Worker never gets the isolation binding: it would open the internal cron path
        # to the Internet, which only the dispatcher may reach.
        bindings = [b for b in bundle.bindings if b.name != contract()["dispatch"]["isolation_binding"]]
        script = cf.WorkersScript(
            f"{name}-worker",
            account_id=args.account_id,
            script_name=bundle.script_name,
            main_module=bundle.main_module,
            content=main.content,
            files=files or None,
            compatibility_date=bundle.compatibility_date,
            compatibility_flags=list(bundle.compatibility_flags),
            bindings=[_binding(b, targets) for b in bindings],
            observability=cf.WorkersScriptObservabilityArgs(
                enabled=bundle.observability,
                head_sampling_rate=bundle.logs_sampling_rate,
                # The logs rate is optional-not-computed with an API default of 1: set it, or a
                # refresh reads the default back as drift (same trap as D1 read_replication).
                logs=cf.WorkersScriptObservabilityLogsArgs(
                    enabled=bundle.observability,
                    invocation_logs=True,
                    head_sampling_rate=bundle.logs_sampling_rate,
                ),
            ),
            limits=(
                cf.WorkersScriptLimitsArgs(cpu_ms=bundle.cpu_ms, subrequests=bundle.subrequests)
                if bundle.cpu_ms is not None or bundle.subrequests is not None
                else None
            ),
            # Schema and data before code: the new script may need the new tables, and a running
            # script accepts a newer signed config, while a new script must not start before the
            # envelopes it will read exist.
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

        for index, pattern in enumerate(bundle.routes):
            cf.WorkersRoute(
                f"{name}-route-{index}", zone_id=args.zone_id, pattern=pattern, script=script.script_name, opts=child
            )
        for index, hostname in enumerate(bundle.custom_domains):
            cf.WorkersCustomDomain(
                f"{name}-domain-{index}",
                account_id=args.account_id,
                hostname=hostname,
                service=script.script_name,
                zone_id=args.zone_id,
                # The API upserts by hostname: create-before-delete would let the old mapping's
                # delete remove the new one.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
        # Always present, even with no schedules: deleting a cron trigger is a no-op at Cloudflare,
        # so dropping schedules must be an update to an empty list.
        cf.WorkersCronTrigger(
            f"{name}-cron",
            account_id=args.account_id,
            script_name=script.script_name,
            schedules=[cf.WorkersCronTriggerScheduleArgs(cron=c) for c in bundle.crons],
            opts=child,
        )
        return script.script_name


def _binding(binding: Binding, targets: Mapping[str, pulumi.Input[str]]) -> cf.WorkersScriptBindingArgs:
    if binding.type == "kv_namespace":
        return cf.WorkersScriptBindingArgs(name=binding.name, type=binding.type, namespace_id=targets[binding.target])
    if binding.type == "d1":
        return cf.WorkersScriptBindingArgs(name=binding.name, type=binding.type, id=targets[binding.target])
    if binding.type == "secret_text":
        # The SDK does not mark binding text secret; without this the relay key is plaintext in state.
        return cf.WorkersScriptBindingArgs(name=binding.name, type=binding.type, text=_secret(targets[binding.target]))
    return cf.WorkersScriptBindingArgs(name=binding.name, type=binding.type, text=binding.target)
