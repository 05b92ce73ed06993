"""`NamespacedScript`: a tenant's Worker uploaded into the platform's dispatch namespace.

Why a dynamic resource: pulumi-cloudflare 6.23.1 has the namespace and the dispatcher's binding but
no way to put a script into a namespace, tag it, or give it a secret (TF v5 dropped all three).
This resource uploads through the REST API (components/wfp_api.py) with the bundle's modules,
bindings, compatibility settings, limits and tags, sets `RELAY_KEY` through the namespace secrets
API (never in the upload metadata, and kept across uploads with `keep_bindings`), reads settings
and etag back for refresh and drift, and deletes with `force` on destroy.

Serialization: Pulumi pickles the provider (dill) into state. The provider holds no field at all,
so nothing secret is captured and `serialize_as_secret_always` is off; the token and the endpoint
are read from the environment on every call. The relay key is an input and therefore in state,
marked secret (`additional_secret_outputs`). As with any dynamic resource, updating it needs the
same Python minor version that created it (pulumi PR #2900): pin the interpreter per fleet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.dynamic

from components.wfp_api import ModuleFile, NamespaceApi, NamespaceApiError, check_tags

RELAY_KEY_SECRET = "RELAY_KEY"
IDENTITY = ("account_id", "namespace", "script_name")
"""Changing any of these is a different script: replace (create the new one, then delete the old)."""
UPLOADED = ("main_module", "modules", "bindings", "compatibility_date", "compatibility_flags", "limits", "tags")
"""Everything that goes into the upload; a change re-uploads."""
SECRET_INPUTS = ("relay_key",)


def _api(props: Mapping[str, Any]) -> NamespaceApi:
    return NamespaceApi(account_id=props["account_id"], namespace=props["namespace"], tenant=props["tenant"])


def _modules(props: Mapping[str, Any]) -> list[ModuleFile]:
    return [ModuleFile(**m) for m in props["modules"]]


def upload_metadata(props: Mapping[str, Any]) -> dict[str, Any]:
    """The upload's `metadata` field. Keeping `secret_text` bindings is what keeps RELAY_KEY across uploads."""
    metadata: dict[str, Any] = {
        "main_module": props["main_module"],
        "bindings": [dict(b) for b in props["bindings"]],
        "compatibility_date": props["compatibility_date"],
        "compatibility_flags": list(props["compatibility_flags"]),
        "tags": list(props["tags"]),
        "keep_bindings": ["secret_text"],
    }
    if props.get("limits"):
        metadata["limits"] = dict(props["limits"])
    return metadata


def _binding_view(binding: Mapping[str, Any]) -> dict[str, Any]:
    """A binding as comparable across upload and read-back (D1 reads back as `database_id`)."""
    view = {k: v for k, v in binding.items() if k in ("name", "type", "namespace_id", "text")}
    if binding.get("type") == "d1":
        view["id"] = binding.get("id") or binding.get("database_id")
    if binding.get("type") == "secret_text":
        view.pop("text", None)
    return view


def live_state(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What refresh records from the namespace: the uploaded settings as Cloudflare reports them."""
    bindings = [_binding_view(b) for b in settings.get("bindings") or [] if b.get("type") != "secret_text"]
    return {
        "bindings": sorted(bindings, key=lambda b: str(b.get("name"))),
        "compatibility_date": settings.get("compatibility_date"),
        "compatibility_flags": list(settings.get("compatibility_flags") or []),
        "limits": dict(settings["limits"]) if settings.get("limits") else None,
        "tags": sorted(settings.get("tags") or []),
        "secret_bound": any(
            b.get("type") == "secret_text" and b.get("name") == RELAY_KEY_SECRET for b in settings.get("bindings") or []
        ),
    }


def desired_state(props: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "bindings": sorted((_binding_view(b) for b in props["bindings"]), key=lambda b: str(b.get("name"))),
        "compatibility_date": props["compatibility_date"],
        "compatibility_flags": list(props["compatibility_flags"]),
        "limits": dict(props["limits"]) if props.get("limits") else None,
        "tags": sorted(props["tags"]),
        "secret_bound": True,
    }


class NamespacedScriptProvider(pulumi.dynamic.ResourceProvider):
    # No field holds anything; a secret would only appear here through a captured Output.
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures = []
        try:
            check_tags(news.get("tenant", "?"), news.get("tags") or [])
        except NamespaceApiError as exc:
            failures.append(pulumi.dynamic.CheckFailure("tags", str(exc)))
        return pulumi.dynamic.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        api = _api(props)
        script = props["script_name"]
        uploaded = api.upload(script, upload_metadata(props), _modules(props))
        try:
            api.put_secret(script, RELAY_KEY_SECRET, props["relay_key"])
        except NamespaceApiError:
            # Nothing half-made: a script without its relay key would serve degraded forever.
            with contextlib.suppress(NamespaceApiError):
                api.delete(script)
            raise
        outs = {**props, "etag": uploaded.get("etag"), "live": desired_state(props)}
        return pulumi.dynamic.CreateResult(id_=f"{props['account_id']}/{props['namespace']}/{script}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = [k for k in (*IDENTITY, *UPLOADED, *SECRET_INPUTS) if olds.get(k) != news.get(k)]
        # Drift found by refresh: the namespace no longer holds what the inputs say.
        if olds.get("live") is not None and olds.get("live") != desired_state(news):
            changed.append("live")
        replaces = [k for k in IDENTITY if k in changed]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        api = _api(news)
        script = news["script_name"]
        etag = olds.get("etag")
        drifted = olds.get("live") != desired_state(news)
        if drifted or any(olds.get(k) != news.get(k) for k in UPLOADED):
            etag = api.upload(script, upload_metadata(news), _modules(news)).get("etag")
        live = olds.get("live") or {}
        if olds.get("relay_key") != news.get("relay_key") or not live.get("secret_bound", True):
            api.put_secret(script, RELAY_KEY_SECRET, news["relay_key"])
        return pulumi.dynamic.UpdateResult(outs={**news, "etag": etag, "live": desired_state(news)})

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        api = _api(props)
        script = props["script_name"]
        found = api.script(script)
        settings = api.settings(script) if found is not None else None
        if found is None or settings is None:
            return pulumi.dynamic.ReadResult(id_="", outs={})
        etag = (found.get("script") or {}).get("etag") or props.get("etag")
        live = live_state(settings)
        if etag != props.get("etag"):
            # Someone uploaded other code under this name: make the next diff re-upload ours.
            live = {**live, "etag_changed": True}
        return pulumi.dynamic.ReadResult(id_=id_, outs={**props, "etag": etag, "live": live})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _api(props).delete(props["script_name"])


@dataclass(frozen=True)
class NamespacedScriptArgs:
    account_id: pulumi.Input[str]
    """Cloudflare account of the namespace."""
    namespace: pulumi.Input[str]
    """Dispatch namespace name (the platform stack's)."""
    tenant: str
    """Tenant id, named in every error."""
    script_name: str
    """The user Worker's name in the namespace (`clawdbot-<env>-<tenant>`)."""
    main_module: str
    modules: Sequence[ModuleFile]
    bindings: Sequence[Mapping[str, pulumi.Input[str]]]
    """Upload-metadata bindings without secrets (`kv_namespace`, `d1`, `plain_text`)."""
    compatibility_date: str
    relay_key: pulumi.Input[str]
    """Set as the `RELAY_KEY` secret through the secrets API; secret in state."""
    compatibility_flags: Sequence[str] = ()
    limits: Mapping[str, int] | None = None
    tags: Sequence[str] = field(default_factory=tuple)


class NamespacedScript(pulumi.dynamic.Resource):
    """A tenant's user Worker in the dispatch namespace, with its relay key as a namespace secret."""

    etag: pulumi.Output[str]
    """Etag of the uploaded script; refresh compares it with the namespace's."""
    script_name: pulumi.Output[str]
    """The user Worker's name in the namespace."""

    def __init__(self, name: str, args: NamespacedScriptArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "account_id": args.account_id,
            "namespace": args.namespace,
            "tenant": args.tenant,
            "script_name": args.script_name,
            "main_module": args.main_module,
            "modules": [{"name": m.name, "content": m.content, "content_type": m.content_type} for m in args.modules],
            "bindings": [dict(b) for b in args.bindings],
            "compatibility_date": args.compatibility_date,
            "compatibility_flags": list(args.compatibility_flags),
            "limits": dict(args.limits) if args.limits else None,
            "tags": list(args.tags),
            "relay_key": pulumi.Output.secret(args.relay_key),
            "etag": None,
            "live": None,
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_INPUTS))
        super().__init__(NamespacedScriptProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts))
