"""TenantSpec → EdgeBundle: everything one tenant's edge is made of, as plain immutable data.

Pure (no Pulumi, no network, no secrets): the same bundle is deployed by `components.TenantEdge`
and run by the local edge, and its hash drives change detection. Values that need the relay key
(signed config, secret envelopes) are described here and produced at deploy time.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from orchestrator.core import contract as edge_contract
from orchestrator.core.contract import WORKER_SRC
from orchestrator.core.crypto import config_payload_text
from orchestrator.core.dispatch import RoutingEntry, isolation_of, plan_of, routing_entries, script_tags
from orchestrator.core.migrations import Migration, bundled_migrations
from orchestrator.core.model import FrozenModel, Isolation, PlatformSpec, TenantSpec, host_for, resource_prefix

MODULE_CONTENT_TYPE = "application/javascript+module"
MAIN_MODULE = "index.js"
"""The Worker's entry in worker_src/src/, and the name of the one module a bundle uploads."""
EMBEDDED_TEMPLATE = "embedded.js.j2"
EMBEDDED_MODULE = "embedded.js"
"""The per-tenant module (rendered from EMBEDDED_TEMPLATE), linked into the bundle like the others."""
EMBEDDED_DECLARATION = "\nconst EMBEDDED = "
"""The line of the linked bundle that holds the embedded object (the template's `export const`)."""


class Module(FrozenModel):
    name: str
    content: str
    content_type: str = MODULE_CONTENT_TYPE


class Binding(FrozenModel):
    """A Worker binding. `target` names what it points at: `kv`, `d1`, `relay_key`, or the literal text."""

    name: str
    type: Literal["kv_namespace", "d1", "secret_text", "plain_text"]
    target: str


class KvEntry(FrozenModel):
    key: str
    kind: Literal["config", "secret"]
    secret_name: str | None = None


class EdgeBundle(FrozenModel):
    tenant: str
    script_name: str
    kv_title: str
    d1_name: str
    main_module: str
    modules: tuple[Module, ...]
    compatibility_date: str
    compatibility_flags: tuple[str, ...]
    observability: bool
    logs_sampling_rate: float
    bindings: tuple[Binding, ...]
    kv_entries: tuple[KvEntry, ...]
    migrations: tuple[Migration, ...]
    routes: tuple[str, ...]
    custom_domains: tuple[str, ...]
    hostnames: tuple[str, ...]
    health_host: str | None
    """A hostname that routes the health path to this Worker (a custom domain, else a covering route)."""
    crons: tuple[str, ...]
    config_version: int
    config_payload: str
    """The JSON text the deploy step signs into KV (docs/contract.md, signed config document)."""
    secret_names: tuple[str, ...]
    cpu_ms: int | None
    subrequests: int | None
    d1_location_hint: str | None
    d1_read_replication: str
    relay_key_generation: int
    isolation: Isolation = "workers"
    """`dispatch`: uploaded as a user Worker into the platform's namespace (NamespacedScript)."""
    plan: str | None = None
    tags: tuple[str, ...] = ()
    """Dispatch mode: the user Worker's tags (tenant, plan, env, fleet)."""
    routing: tuple[RoutingEntry, ...] = ()
    """Dispatch mode: the tenant's entries in the platform's routing KV."""
    keep_account_worker: bool = False
    """Dispatch mode, while moving: the account Worker and its routes stay alongside the user Worker."""
    bundle_hash: str
    """sha256 over everything above: equal hashes mean nothing to deploy."""

    def module(self, name: str) -> Module:
        return next(m for m in self.modules if m.name == name)

    def binding(self, name: str) -> Binding:
        return next(b for b in self.bindings if b.name == name)


if TYPE_CHECKING:
    import jinja2

    from orchestrator.core.esm_link import Linked


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # only to render the embedded module; change detection never needs it

    return jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


@cache
def _static_modules() -> tuple[Module, ...]:
    """Every hand-written module of the Worker, read once per process."""
    sources = sorted((WORKER_SRC / "src").glob("*.js"))
    if (WORKER_SRC / "src" / EMBEDDED_MODULE) in sources:
        # It would ship beside the freshly rendered one; a dev copy belongs in build/, not src/.
        stray = WORKER_SRC / "src" / EMBEDDED_MODULE
        raise FileExistsError(f"{stray}: a rendered module in the source tree; delete it")
    modules = tuple(Module(name=p.name, content=p.read_text(encoding="utf-8")) for p in sources)
    if MAIN_MODULE not in {m.name for m in modules}:
        raise FileNotFoundError(f"{WORKER_SRC / 'src' / MAIN_MODULE}: the Worker's main module is missing")
    return modules


def _bindings(spec: TenantSpec, platform: PlatformSpec) -> tuple[Binding, ...]:
    name = edge_contract.binding_name
    bindings = (
        Binding(name=name("kv"), type="kv_namespace", target="kv"),
        Binding(name=name("d1"), type="d1", target="d1"),
        Binding(name=name("relay_key"), type="secret_text", target="relay_key"),
        Binding(name=name("tenant_id"), type="plain_text", target=spec.id),
    )
    if isolation_of(spec, platform) == "dispatch":
        # Opens the user Worker's internal cron path, which only the dispatcher can reach.
        isolation = edge_contract.contract()["dispatch"]["isolation_binding"]
        return (*bindings, Binding(name=isolation, type="plain_text", target="dispatch"))
    return bindings


def _inputs(spec: TenantSpec, platform: PlatformSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a bundle is made of besides the static modules: its fields and the embedded module's inputs."""
    prefix = resource_prefix(platform, spec.id)
    migrations = bundled_migrations()
    payload = config_payload_text(spec.id, spec.config_version, spec.config)
    embedded: dict[str, Any] = {
        "contract": edge_contract.contract(),
        "tenant": spec.id,
        "config": json.loads(payload),
        "migrations": [m.name for m in migrations],
        "secret_names": list(spec.secret_names),
    }
    fields: dict[str, Any] = {
        "tenant": spec.id,
        "script_name": prefix,
        "kv_title": prefix,
        "d1_name": prefix,
        "main_module": MAIN_MODULE,
        "compatibility_date": (spec.compatibility_date or platform.compatibility_date).isoformat(),
        "compatibility_flags": tuple(
            platform.compatibility_flags if spec.compatibility_flags is None else spec.compatibility_flags
        ),
        "observability": platform.observability,
        "logs_sampling_rate": platform.logs_sampling_rate,
        "bindings": _bindings(spec, platform),
        "kv_entries": (
            KvEntry(key=edge_contract.config_kv_key(), kind="config"),
            *(KvEntry(key=edge_contract.secret_kv_key(n), kind="secret", secret_name=n) for n in spec.secret_names),
        ),
        "migrations": migrations,
        "routes": tuple(spec.routes),
        "custom_domains": tuple(spec.custom_domains),
        "hostnames": tuple(spec.hostnames()),
        "health_host": (
            spec.custom_domains[0] if spec.custom_domains else host_for(spec.routes, edge_contract.health_path())
        ),
        "crons": tuple(spec.crons),
        "config_version": spec.config_version,
        "config_payload": payload,
        "secret_names": tuple(spec.secret_names),
        "cpu_ms": spec.limits.cpu_ms if spec.limits else None,
        "subrequests": spec.limits.subrequests if spec.limits else None,
        "d1_location_hint": spec.d1_location_hint,
        "d1_read_replication": spec.d1_read_replication,
        "relay_key_generation": spec.relay_key_generation,
    }
    if isolation_of(spec, platform) == "dispatch":
        # Only in dispatch mode, so a workers-mode bundle hashes exactly as before the switch existed.
        fields |= {
            "isolation": "dispatch",
            "keep_account_worker": spec.keep_account_worker,
            "plan": plan_of(spec, platform),
            "tags": script_tags(spec, platform),
            "routing": routing_entries(spec, platform),
        }
    return fields, embedded


def _bundle_hash(fields: dict[str, Any], embedded: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of {embedded, fields, linked}.

    `linked` is the bundle's text with the embedded module unrendered (the template's own line):
    every hand-written module, the template and the linker's output, so a change to any of them is
    a change to deploy. The hash covers the embedded module's inputs rather than its rendered
    text, which itself carries the hash: the same inputs always render the same bytes. The keys
    are sorted, so the document's text is the per-tenant half followed by the static half, which
    is encoded once per process.
    """
    digest = hashlib.sha256(b'{"embedded":')
    digest.update(_canonical(embedded))
    digest.update(b',"fields":')
    digest.update(_canonical(_jsonable(fields)))
    digest.update(_static_tail())
    return digest.hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@cache
def _static_tail() -> bytes:
    return b',"linked":' + _canonical(_linked().text()) + b"}"


@cache
def _linked() -> Linked:
    """Every module of the Worker linked into one (`core.esm_link`), the embedded one as its template."""
    from orchestrator.core.esm_link import link  # once per process, when a hash or bundle is first asked for

    sources = {m.name: m.content for m in _static_modules()}
    return link({**sources, EMBEDDED_MODULE: _template_source()}, MAIN_MODULE)


@cache
def _around_embedded() -> tuple[str, jinja2.Template, str]:
    """The bundle's text before and after the embedded module's body, and that body as a template."""
    marker = "\x00embedded\x00"
    body = next(m.body for m in _linked().modules if m.name == EMBEDDED_MODULE)
    before, after = _linked().text(lambda m: marker if m.name == EMBEDDED_MODULE else m.body).split(marker)
    return before, _environment().from_string(body), after


def bundle_identity(spec: TenantSpec, platform: PlatformSpec) -> tuple[str, int]:
    """The bundle hash and config version `render_bundle` gives, without rendering the embedded module:
    what change detection compares with the deployed record."""
    fields, embedded = _inputs(spec, platform)
    return _bundle_hash(fields, embedded), spec.config_version


def render_bundle(spec: TenantSpec, platform: PlatformSpec) -> EdgeBundle:
    """The tenant's bundle: ONE module (the Worker's modules linked), deployed and run locally alike."""
    fields, embedded = _inputs(spec, platform)
    bundle_hash = _bundle_hash(fields, embedded)
    embedded["bundle_hash"] = bundle_hash
    before, template, after = _around_embedded()
    content = before + template.render(embedded=embedded) + after
    return EdgeBundle(modules=(Module(name=MAIN_MODULE, content=content),), bundle_hash=bundle_hash, **fields)


def split_embedded(content: str) -> tuple[str, str, str]:
    """A rendered bundle as (text before, the embedded object's JSON, text after).

    The template declares the object on one line (`const EMBEDDED = <json>;`, jinja2's tojson
    escapes every line break), and no other module declares it. ValueError when that is not so.
    """
    first = content.find(EMBEDDED_DECLARATION)
    if first == -1 or content.find(EMBEDDED_DECLARATION, first + 1) != -1:
        raise ValueError(f"not one `{EMBEDDED_DECLARATION.strip()}` line in the bundle")
    start = first + len(EMBEDDED_DECLARATION)
    end = content.find(";\n", start)
    if end == -1:
        raise ValueError(f"`{EMBEDDED_DECLARATION.strip()}` does not end its line with `;`")
    return content[:start], content[start:end], content[end:]


@cache
def _template_source() -> str:
    return (WORKER_SRC / "src" / EMBEDDED_TEMPLATE).read_text(encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
