"""Names the rules match on: Pulumi type tokens and the edge contract's bindings and KV keys.

The pack is self-contained (it may be published without the repo), so the contract names are
repeated here; tests/test_policy_rules.py fails when they drift from
contract/edge-contract.json or from the orchestrator's type tokens and names.
"""

from __future__ import annotations

SCRIPT = "cloudflare:index/workersScript:WorkersScript"
KV_NAMESPACE = "cloudflare:index/workersKvNamespace:WorkersKvNamespace"
KV_ENTRY = "cloudflare:index/workersKv:WorkersKv"
D1_DATABASE = "cloudflare:index/d1Database:D1Database"
ROUTE = "cloudflare:index/workersRoute:WorkersRoute"
CUSTOM_DOMAIN = "cloudflare:index/workersCustomDomain:WorkersCustomDomain"
CRON_TRIGGER = "cloudflare:index/workersCronTrigger:WorkersCronTrigger"
RANDOM_BYTES = "random:index/randomBytes:RandomBytes"
TENANT_EDGE = "clawdbot:edge:TenantEdge"

CLOUDFLARE_TYPES = frozenset({SCRIPT, KV_NAMESPACE, KV_ENTRY, D1_DATABASE, ROUTE, CUSTOM_DOMAIN, CRON_TRIGGER})

RELAY_KEY_BINDING = "RELAY_KEY"
TENANT_ID_BINDING = "TENANT_ID"
KV_BINDING = "EDGE_KV"
D1_BINDING = "EDGE_DB"

CONFIG_KV_KEY = "config"
ROUTING_HOST_KEY_PREFIX = "host:"
"""Dispatch mode: a routing-KV key `host:<hostname>` routes that hostname to the entry's tenant."""
SECRET_KV_PREFIX = "secret:"
ENVELOPE_VERSION = 1
ENVELOPE_ALG = "A256GCM"
ENVELOPE_IV_BYTES = 12
GCM_TAG_BYTES = 16

NAME_PREFIX = "clawdbot"
"""Account-wide names are `clawdbot-<environment>-<tenant>` (orchestrator.core.model.resource_prefix)."""

STACK_CONFIG_TENANT_KEY = "clawdbot:tenant"
"""Stack config key holding the tenant spec; the engine hands it to the pack in PULUMI_CONFIG."""
TENANT_STACK_PREFIX = "prod."
"""Tenant stacks are `prod.<tenant>`; `prod` alone is the platform stack."""

DISPATCH_NAMESPACE = "cloudflare:index/workersForPlatformsDispatchNamespace:WorkersForPlatformsDispatchNamespace"
DYNAMIC = "pulumi-python:dynamic:Resource"
PLATFORM_SCRIPT_RE = r"^clawdbot-[a-z][a-z0-9]*--[a-z]+$"
"""The platform's own Workers (dispatch, outbound: orchestrator.core.dispatch.platform_name) serve
no tenant and hold no relay key; `--` never occurs in a tenant's name."""
MAX_SCRIPT_TAGS = 8
"""Workers for Platforms allows 8 tags per user Worker (orchestrator.core.dispatch.MAX_TAGS)."""
