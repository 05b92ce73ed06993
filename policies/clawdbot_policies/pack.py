"""The pack's contents, importable without starting the analyzer server."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from .rules.dispatch import dispatch_namespace_protected, user_worker_tags
from .rules.durability import d1_protected, kv_titles_unique
from .rules.limits import compatibility_date_fresh, cron_schedules_limit, script_size_limit
from .rules.ownership import hostname_ownership
from .rules.relay_key import relay_key_binding
from .rules.secrets import kv_secrets_encrypted, no_plaintext_secret_bindings
from .rules.tenancy import tenant_isolation, tenant_resource_naming
from .rules.zones import no_apex_catch_all_route, routes_in_tenant_zone

PACK_NAME = "clawdbot-edge"
PACK_ENFORCEMENT = EnforcementLevel.MANDATORY
"""Every rule blocks an update unless it says otherwise (compatibility-date-fresh is advisory)."""

POLICIES: list[Policy] = [
    no_plaintext_secret_bindings,
    kv_secrets_encrypted,
    relay_key_binding,
    tenant_resource_naming,
    tenant_isolation,
    routes_in_tenant_zone,
    no_apex_catch_all_route,
    hostname_ownership,
    d1_protected,
    kv_titles_unique,
    compatibility_date_fresh,
    script_size_limit,
    cron_schedules_limit,
    dispatch_namespace_protected,
    user_worker_tags,
]
