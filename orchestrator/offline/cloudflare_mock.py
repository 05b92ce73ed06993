"""A provider-faithful stand-in for Cloudflare, for running the real program without the CLI.

It answers like pulumi-cloudflare 6.23.1 (ids, computed outputs) and refuses what Cloudflare or
the provider would refuse: unknown binding types, bindings missing their keys, KV titles or D1
names taken in the account, routes and domains outside their zone, bad crons, oversize values.
A mock that accepts anything proves nothing; every rule here cites the limit it models
(shared/reference/cloudflare-pulumi.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pulumi

from orchestrator.core.cron import validate_cron
from orchestrator.core.dispatch import tag_problem
from orchestrator.core.resource_types import (
    CRON,
    CUSTOM_DOMAIN,
    CUSTOM_HOSTNAME,
    D1,
    DISPATCH_NAMESPACE,
    DYNAMIC,
    FALLBACK_ORIGIN,
    KV,
    KV_NAMESPACE,
    RANDOM_BYTES,
    ROUTE,
    SCRIPT,
    STACK_REFERENCE,
)
from orchestrator.offline.errors import ProviderRejected

BINDING_KEYS: dict[str, tuple[str, ...]] = {
    "kv_namespace": ("namespaceId",),
    "d1": ("id",),
    "plain_text": ("text",),
    "secret_text": ("text",),
    "json": ("json",),
    "service": ("service",),
    "dispatch_namespace": ("namespace",),
    "durable_object_namespace": ("className",),
    "r2_bucket": ("bucketName",),
    "queue": ("queueName",),
    "analytics_engine": ("dataset",),
    "hyperdrive": ("id",),
    "secrets_store_secret": ("storeId", "secretName"),
    "ai": (),
    "browser": (),
    "version_metadata": (),
}
"""Binding types we model and the keys each needs (engine names). Any other type is refused:
the provider checks types only at preview against a list we do not use."""

SCRIPT_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")
D1_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_SCRIPT_BYTES = 10 * 1024 * 1024
MAX_KV_KEY_BYTES = 512
MAX_KV_VALUE_BYTES = 25 * 1024 * 1024
MAX_KV_TITLE = 512
MAX_ACCOUNT_CRONS = 250
D1_LOCATION_HINTS = {"wnam", "enam", "weur", "eeur", "apac", "oc"}
SECRET_SIG = pulumi.runtime.rpc._special_sig_key


def unwrap(value: Any) -> Any:
    """Strip the engine's secret wrappers, keeping the plain structure."""
    if isinstance(value, dict):
        if SECRET_SIG in value and "value" in value:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _known(value: Any) -> bool:
    """Preview hands unknown values to the provider; it checks references only once they are known."""
    return not isinstance(value, pulumi.output.Unknown)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass
class FakeAccount:
    """What Cloudflare already holds; shared across runs to model several tenants in one account."""

    zones: dict[str, str] = field(default_factory=dict)
    """zone id → zone name."""
    kv_titles: dict[str, str] = field(default_factory=dict)
    kv_namespaces: set[str] = field(default_factory=set)
    d1_names: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)
    hostnames: dict[str, str] = field(default_factory=dict)
    route_patterns: dict[tuple[str, str], str] = field(default_factory=dict)
    cron_count: int = 0
    dispatch_namespaces: set[str] = field(default_factory=set)
    namespace_scripts: dict[tuple[str, str], str] = field(default_factory=dict)
    """(namespace, script) → owner: user Workers uploaded by NamespacedScript."""
    custom_hostnames: dict[str, str] = field(default_factory=dict)
    stack_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Fully qualified stack name → its outputs, what a StackReference reads (recorded by offline runs)."""

    def claim(self, registry: dict[Any, str], key: Any, owner: str, what: str) -> None:
        holder = registry.get(key)
        if holder is not None and holder != owner:
            raise ProviderRejected(f"{owner}: {what} {key!r} already exists in the account (held by {holder})")
        registry[key] = owner


def _in_zone(host: str, zone: str) -> bool:
    host = host.removeprefix("*").removeprefix(".")
    return host == zone or host.endswith("." + zone)


class CloudflareMocks(pulumi.runtime.Mocks):
    """Mocks answering like the provider; `preview=True` leaves computed outputs unknown."""

    def __init__(self, account: FakeAccount | None = None, preview: bool = False) -> None:
        self.account = account if account is not None else FakeAccount()
        self.preview = preview
        self.rejections: list[str] = []
        """Every refusal, in order: the SDK may swallow an exception raised inside a registration."""

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        raise ProviderRejected(f"unexpected invoke {args.token}: the program must not call providers at runtime")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == STACK_REFERENCE:
            # Read, not registered: the mock monitor hands it over without `custom` set.
            return _stack_reference(self.account, args.name, {"name": args.resource_id or args.name})
        if not args.custom:
            return None, {}
        inputs = unwrap(args.inputs)
        # The same resource re-registered by the same stack is an update, not a collision.
        owner = f"{args.typ.rsplit(':', 1)[-1]} {args.name} (stack {pulumi.get_stack()})"
        handler = _HANDLERS.get(args.typ)
        if handler is None:
            raise ProviderRejected(
                f"{owner}: type {args.typ} is not modelled; add it to orchestrator/offline/cloudflare_mock.py"
            )
        try:
            resource_id, computed = handler(self.account, owner, inputs)
        except ProviderRejected as exc:
            self.rejections.append(str(exc))
            raise
        if self.preview:
            # A create in preview knows only its inputs; ids and computed values are unknown.
            return "", dict(args.inputs)
        return resource_id, {**args.inputs, **computed}


def _script(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = inputs.get("scriptName", "")
    if not SCRIPT_NAME_RE.match(name):
        raise ProviderRejected(f"{owner}: script name {name!r} must be 1-63 of a-z 0-9 - _")
    if not inputs.get("content") and not inputs.get("contentFile"):
        raise ProviderRejected(f"{owner}: no content or content_file")
    if bool(inputs.get("mainModule")) == bool(inputs.get("bodyPart")):
        raise ProviderRejected(f"{owner}: exactly one of main_module (ES modules) or body_part is required")
    files = inputs.get("files") or {}
    if inputs.get("mainModule") in files:
        raise ProviderRejected(f"{owner}: main module {inputs['mainModule']!r} is also listed in files")
    size = len(inputs.get("content", "").encode())
    for file_name, spec in files.items():
        if not spec.get("contentType") or not (spec.get("contentBase64") or spec.get("contentFile")):
            raise ProviderRejected(f"{owner}: file {file_name!r} needs content_type and content_base64")
        size += len(base64.b64decode(spec.get("contentBase64", "")))
    if size > MAX_SCRIPT_BYTES:
        raise ProviderRejected(f"{owner}: script is {size} bytes; the limit is {MAX_SCRIPT_BYTES}")
    _check_compatibility_date(owner, inputs.get("compatibilityDate"))
    seen: set[str] = set()
    for binding in inputs.get("bindings") or []:
        _check_binding(owner, binding, seen)
    account.claim(account.scripts, name, owner, "script")
    return name, {
        "createdOn": "2026-01-01T00:00:00Z",
        "modifiedOn": "2026-01-01T00:00:00Z",
        "etag": _digest(name, inputs.get("content", ""))[:32],
        "hasModules": True,
        "handlers": ["fetch", "scheduled"],
        "startupTimeMs": 1,
    }


def _check_compatibility_date(owner: str, value: Any) -> None:
    try:
        date = dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ProviderRejected(f"{owner}: compatibility_date {value!r} is not YYYY-MM-DD") from None
    if date > dt.date.today():
        raise ProviderRejected(f"{owner}: compatibility_date {value} is in the future")


def _check_binding(owner: str, binding: dict[str, Any], seen: set[str]) -> None:
    name, kind = binding.get("name"), binding.get("type")
    if not name or not kind:
        raise ProviderRejected(f"{owner}: every binding needs name and type, got {sorted(binding)}")
    if name in seen:
        raise ProviderRejected(f"{owner}: binding name {name!r} is used twice")
    seen.add(name)
    if kind not in BINDING_KEYS:
        raise ProviderRejected(f"{owner}: binding {name!r} has unknown type {kind!r}")
    missing = [k for k in BINDING_KEYS[kind] if _known(binding.get(k)) and binding.get(k) in (None, "")]
    if missing:
        raise ProviderRejected(f"{owner}: binding {name!r} of type {kind} is missing {', '.join(missing)}")


def _kv_namespace(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    title = inputs.get("title", "")
    if not title or len(title) > MAX_KV_TITLE:
        raise ProviderRejected(f"{owner}: KV title must be 1-{MAX_KV_TITLE} characters")
    # Cloudflare error 10014: titles are unique per account.
    account.claim(account.kv_titles, title, owner, "KV namespace title")
    namespace_id = _digest("kv", inputs.get("accountId", ""), title)[:32]
    account.kv_namespaces.add(namespace_id)
    return namespace_id, {"supportsUrlEncoding": True}


def _kv(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    key = inputs.get("keyName", "")
    if not key or len(key.encode()) > MAX_KV_KEY_BYTES or key in {".", ".."}:
        raise ProviderRejected(f"{owner}: KV key must be 1-{MAX_KV_KEY_BYTES} bytes and not '.' or '..'")
    if _known(inputs.get("namespaceId")) and inputs.get("namespaceId") not in account.kv_namespaces:
        raise ProviderRejected(f"{owner}: KV namespace {inputs.get('namespaceId')!r} does not exist")
    if len(str(inputs.get("value", "")).encode()) > MAX_KV_VALUE_BYTES:
        raise ProviderRejected(f"{owner}: KV value over {MAX_KV_VALUE_BYTES} bytes")
    ttl = inputs.get("expirationTtl")
    if ttl is not None and ttl < 60:
        raise ProviderRejected(f"{owner}: expiration_ttl must be at least 60 seconds")
    return f"{inputs['namespaceId']}/{key}", {}


def _d1(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = inputs.get("name", "")
    if not D1_NAME_RE.match(name):
        raise ProviderRejected(f"{owner}: D1 name {name!r} must be 1-64 of a-z 0-9 - _")
    hint = inputs.get("primaryLocationHint")
    if hint is not None and hint not in D1_LOCATION_HINTS:
        raise ProviderRejected(f"{owner}: primary_location_hint {hint!r} is not one of {sorted(D1_LOCATION_HINTS)}")
    account.claim(account.d1_names, name, owner, "D1 database")
    database_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"d1:{inputs.get('accountId')}:{name}"))
    return database_id, {"uuid": database_id, "version": "production", "numTables": 0, "fileSize": 0}


def _zone_name(account: FakeAccount, owner: str, zone_id: Any) -> str:
    zone = account.zones.get(zone_id)
    if zone is None:
        raise ProviderRejected(f"{owner}: zone {zone_id!r} is not in the account")
    return zone


def _route(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    pattern, zone_id = inputs.get("pattern", ""), inputs.get("zoneId")
    zone = _zone_name(account, owner, zone_id)
    # `*/*` is every hostname on the zone, custom hostnames included (cf-docs workers-for-platforms
    # configuration/hostname-routing.mdx: the dispatcher's route on a SaaS zone).
    if pattern != "*/*" and not _in_zone(pattern.split("/", 1)[0], zone):
        raise ProviderRejected(f"{owner}: route {pattern!r} is outside zone {zone}")
    if inputs.get("script") and _known(inputs["script"]) and inputs["script"] not in account.scripts:
        raise ProviderRejected(f"{owner}: route targets unknown script {inputs['script']!r}")
    account.claim(account.route_patterns, (zone_id, pattern), owner, "route")
    return _digest("route", str(zone_id), pattern)[:32], {}


def _custom_domain(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    hostname = inputs.get("hostname", "")
    zone = _zone_name(account, owner, inputs.get("zoneId"))
    if not _in_zone(hostname, zone) or hostname.startswith("*"):
        raise ProviderRejected(f"{owner}: custom domain {hostname!r} is not a hostname in zone {zone}")
    if _known(inputs.get("service")) and inputs.get("service") not in account.scripts:
        raise ProviderRejected(f"{owner}: custom domain targets unknown script {inputs.get('service')!r}")
    account.claim(account.hostnames, hostname, owner, "custom domain")
    return _digest("domain", hostname)[:32], {"certId": _digest("cert", hostname)[:32], "zoneName": zone}


def _cron(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    schedules = inputs.get("schedules") or []
    for schedule in schedules:
        try:
            validate_cron(schedule.get("cron", ""))
        except ValueError as exc:
            raise ProviderRejected(f"{owner}: {exc}") from None
    account.cron_count += len(schedules)
    if account.cron_count > MAX_ACCOUNT_CRONS:
        raise ProviderRejected(f"{owner}: account cron trigger limit {MAX_ACCOUNT_CRONS} exceeded (error 10072)")
    if _known(inputs.get("scriptName")) and inputs.get("scriptName") not in account.scripts:
        raise ProviderRejected(f"{owner}: cron trigger for unknown script {inputs.get('scriptName')!r}")
    return str(inputs["scriptName"]), {}


def _dispatch_namespace(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = inputs.get("name") or owner
    account.dispatch_namespaces.add(name)
    return name, {"namespaceName": name, "namespaceId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"wfp:{name}"))}


def _random_bytes(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    length = inputs.get("length")
    # Numbers cross the wire as floats.
    if not isinstance(length, int | float) or length < 1 or int(length) != length:
        raise ProviderRejected(f"{owner}: length must be a positive integer")
    length = int(length)
    # Deterministic per resource and keepers, so tests are reproducible and rotation is visible.
    seed = _digest(owner, repr(sorted((inputs.get("keepers") or {}).items())))
    data = b""
    while len(data) < length:
        data += hashlib.sha256((seed + str(len(data))).encode()).digest()
    data = data[:length]
    return seed[:16], {"base64": base64.b64encode(data).decode(), "hex": data.hex()}


UPLOAD_BINDING_KEYS = {"kv_namespace": ("namespace_id",), "d1": ("id",), "plain_text": ("text",)}
"""The upload-metadata shapes NamespacedScript sends (secret_text goes through the secrets API)."""


def _namespaced_script(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    namespace, name = inputs.get("namespace"), inputs.get("script_name", "")
    if _known(namespace) and namespace not in account.dispatch_namespaces:
        raise ProviderRejected(
            f"{owner}: dispatch namespace {namespace!r} does not exist; "
            "deploy the platform stack (prod) in dispatch mode first"
        )
    if not SCRIPT_NAME_RE.match(name):
        raise ProviderRejected(f"{owner}: script name {name!r} must be 1-63 of a-z 0-9 - _")
    if inputs.get("main_module") not in {m.get("name") for m in inputs.get("modules") or []}:
        raise ProviderRejected(f"{owner}: main_module {inputs.get('main_module')!r} is not one of the modules")
    problem = tag_problem(inputs.get("tags") or [])
    if problem:
        raise ProviderRejected(f"{owner}: {problem}")
    seen: set[str] = set()
    for binding in inputs.get("bindings") or []:
        kind, bname = binding.get("type"), binding.get("name")
        if kind not in UPLOAD_BINDING_KEYS or not bname or bname in seen:
            raise ProviderRejected(f"{owner}: upload binding {bname!r} of type {kind!r} is unknown or repeated")
        seen.add(bname)
        missing = [k for k in UPLOAD_BINDING_KEYS[kind] if _known(binding.get(k)) and not binding.get(k)]
        if missing:
            raise ProviderRejected(f"{owner}: upload binding {bname!r} is missing {', '.join(missing)}")
    account.claim(account.namespace_scripts, (namespace, name), owner, "user Worker")
    return f"{inputs.get('account_id')}/{namespace}/{name}", {"etag": _digest(owner, name)[:32]}


def _dynamic(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if "script_name" in inputs and "namespace" in inputs:
        return _namespaced_script(account, owner, inputs)
    migrations = inputs.get("migrations") or []
    return f"{inputs.get('accountId', inputs.get('account_id'))}/{inputs.get('database_id')}", {
        "applied_now": [m["name"] for m in migrations]
    }


def _custom_hostname(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    hostname = inputs.get("hostname", "")
    _zone_name(account, owner, inputs.get("zoneId"))
    if not re.match(r"^(?:\*\.)?(?:[a-z0-9-]+\.)+[a-z]{2,63}$", hostname):
        raise ProviderRejected(f"{owner}: custom hostname {hostname!r} is not a hostname")
    # Cloudflare for SaaS refuses a hostname already on the zone (duplicate custom hostname).
    account.claim(account.custom_hostnames, hostname, owner, "custom hostname")
    return _digest("custom-hostname", hostname)[:32], {"status": "pending", "ownershipVerification": {}}


def _fallback_origin(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    _zone_name(account, owner, inputs.get("zoneId"))
    return str(inputs.get("zoneId")), {"status": "active"}


def _stack_reference(account: FakeAccount, owner: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = str(inputs.get("name"))
    return name, {"name": name, "outputs": dict(account.stack_outputs.get(name, {})), "secretOutputNames": []}


_HANDLERS = {
    SCRIPT: _script,
    KV_NAMESPACE: _kv_namespace,
    KV: _kv,
    D1: _d1,
    ROUTE: _route,
    CUSTOM_DOMAIN: _custom_domain,
    CRON: _cron,
    DISPATCH_NAMESPACE: _dispatch_namespace,
    RANDOM_BYTES: _random_bytes,
    DYNAMIC: _dynamic,
    CUSTOM_HOSTNAME: _custom_hostname,
    FALLBACK_ORIGIN: _fallback_origin,
    STACK_REFERENCE: _stack_reference,
}
