"""The rules one by one, called the SDK's way (`policy.validate(args, report)` with a collecting
report), plus the heuristics and the tenant-context sources they rely on."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from components.tenant_edge import TYPE_TOKEN as TENANT_EDGE_TYPE
from orchestrator.config.tenant_config import TENANT_KEY
from orchestrator.core import resource_types
from orchestrator.core.contract import contract
from orchestrator.core.crypto import seal_secret
from orchestrator.core.model import NAME_PREFIX
from orchestrator.core.names import TENANT_STACK_PREFIX
from orchestrator.core.pack import PACK_DIR
from orchestrator.offline.policy_pack import load_pack

PACK = load_pack()
secretlike = importlib.import_module("clawdbot_policies.secretlike")
constants = importlib.import_module("clawdbot_policies.constants")
context = importlib.import_module("clawdbot_policies.context")
secrets_rules = importlib.import_module("clawdbot_policies.rules.secrets")
zones = importlib.import_module("clawdbot_policies.rules.zones")

URN = "urn:pulumi:prod.acme::clawdbot::clawdbot:edge:TenantEdge$cloudflare:index/{t}::{n}"
ACME = {"tenantId": "acme", "zoneId": "a" * 32, "zoneName": "acme.example.com", "environment": "prod"}


def opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def run(
    policy_name: str,
    type_: str,
    name: str,
    props: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    protect: bool = False,
) -> list[str]:
    policy = PACK.policy(policy_name)
    assert isinstance(policy, ResourceValidationPolicy)
    violations: list[str] = []
    urn = URN.format(t=type_.split(":", 1)[-1], n=name)
    args = ResourceValidationArgs(type_, props, urn, name, opts(protect), None, dict(config or ACME))

    def report(message: str, urn: str | None = None) -> None:
        violations.append(message)

    assert policy.validate(args, report) is None
    return violations


def ignore(message: str, urn: str | None = None) -> None:
    """A report callback for tests that expect an exception instead."""


def worker(*bindings: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"scriptName": "clawdbot-prod-acme", "bindings": list(bindings), "compatibilityDate": "2099-01-01", **extra}


RELAY = {"name": "RELAY_KEY", "type": "secret_text", "text": "a2V5"}


def test_pack_lists_every_rule_once_with_kebab_names_and_one_sentence() -> None:
    names = [p.name for p in PACK.policies]
    assert len(names) == len(set(names)) == 15
    for policy in PACK.policies:
        assert policy.name == policy.name.lower() and " " not in policy.name
        assert policy.description.endswith(".") and policy.description.count(". ") == 0
    assert PACK.enforcement == EnforcementLevel.MANDATORY
    assert PACK.policy("compatibility-date-fresh").enforcement_level == EnforcementLevel.ADVISORY


def test_pack_main_only_constructs_the_pack() -> None:
    source = (PACK_DIR / "__main__.py").read_text(encoding="utf-8")
    assert source.count("PolicyPack(") == 1 and "def " not in source


def test_pack_constants_match_the_edge_contract() -> None:
    shared = contract()
    assert shared["bindings"]["relay_key"] == constants.RELAY_KEY_BINDING
    assert shared["bindings"]["tenant_id"] == constants.TENANT_ID_BINDING
    assert shared["bindings"]["kv"] == constants.KV_BINDING
    assert shared["bindings"]["d1"] == constants.D1_BINDING
    assert shared["kv_keys"]["config"] == constants.CONFIG_KV_KEY
    assert shared["kv_keys"]["secret_prefix"] == constants.SECRET_KV_PREFIX
    assert shared["envelope"]["alg"] == constants.ENVELOPE_ALG


@pytest.mark.parametrize(
    ("pack_name", "orchestrator_value"),
    [("SCRIPT", resource_types.SCRIPT), ("KV_NAMESPACE", resource_types.KV_NAMESPACE),
     ("KV_ENTRY", resource_types.KV), ("D1_DATABASE", resource_types.D1), ("ROUTE", resource_types.ROUTE),
     ("CUSTOM_DOMAIN", resource_types.CUSTOM_DOMAIN), ("CRON_TRIGGER", resource_types.CRON),
     ("RANDOM_BYTES", resource_types.RANDOM_BYTES), ("TENANT_EDGE", TENANT_EDGE_TYPE), ("NAME_PREFIX", NAME_PREFIX),
     ("STACK_CONFIG_TENANT_KEY", TENANT_KEY), ("TENANT_STACK_PREFIX", TENANT_STACK_PREFIX)],
)  # fmt: skip
def test_pack_type_tokens_and_names_match_the_orchestrator(pack_name: str, orchestrator_value: str) -> None:
    # The pack keeps its own copies so it loads without the orchestrator; they must not drift from it.
    assert getattr(constants, pack_name) == orchestrator_value


@pytest.mark.parametrize(
    ("name", "secret"),
    [("STRIPE_KEY", True), ("apiToken", True), ("db-password", True), ("WEBHOOK_SECRET", True),
     ("KEYBOARD", False), ("EDGE_KV", False), ("TENANT_ID", False), ("authorName", False), ("greeting", False)],
)  # fmt: skip
def test_secret_names(name: str, secret: bool) -> None:
    assert secretlike.name_looks_secret(name) is secret


def test_find_secret_names_the_path_never_the_value() -> None:
    doc = json.dumps({"payload": json.dumps({"config": {"pay": "sk_live_51HxAbCdEfGhIjKlMnOp"}})})
    reason = secretlike.find_secret(doc)
    assert reason == "value.payload.config.pay contains what looks like a Stripe secret key"
    assert secretlike.find_secret({"ids": ["3f1c9d2e8b7a6c5d4e3f2a1b0c9d8e7f"], "mac": "NWBS2SRI+="}) is None


@pytest.mark.parametrize(
    "field",
    ["cache_key", "auth_mode", "signature_header", "signatureAlgorithm", "token_ttl", "hmac", "sort_key"],
)
def test_business_settings_named_with_a_secret_word_are_not_secrets(field: str) -> None:
    ordinary = {"cache_key": "tenant:{id}:v1", "auth_mode": "hmac", "signature_header": "X-Signature-256"}
    value = ordinary.get(field, "sha256")
    doc = json.dumps({"payload": json.dumps({"config": {field: value, "ttl": 3600}})})
    assert secretlike.find_secret(doc) is None
    assert secretlike.find_secret({"idempotency_key": "7c1e4b9a-3f2d-4e8b-9a6c-5d0f1e2a3b4c"}) is None


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"api_token": "abc123"}, "value.api_token is named like a secret and holds a plaintext value"),
        ({"webhookSecretValue": "x"}, "value.webhookSecretValue is named like a secret and holds a plaintext"),
        ({"stripe": {"privateKey": "k"}}, "value.stripe.privateKey is named like a secret"),
        ({"carrier_key": "q7Vx2LmP9sKd4RtY8wZb3NcF6hJ1gA5e"}, "value.carrier_key is named like a secret and holds "
         "what looks like a credential token"),
        ({"auth_mode": "sk_live_51HxAbCdEfGhIjKlMnOp"}, "value.auth_mode contains what looks like a Stripe secret key"),
    ],
)  # fmt: skip
def test_credentials_in_documents_are_still_found(doc: dict[str, Any], reason: str) -> None:
    found = secretlike.find_secret(doc)
    assert found is not None and found.startswith(reason)


def test_allowed_names_apply_inside_documents_but_never_to_credential_formats() -> None:
    assert secretlike.find_secret({"session_token": "demo"}, allowed_names=["session_token"]) is None
    stripe = {"session_token": "sk_live_51HxAbCdEfGhIjKlMnOp"}
    assert secretlike.find_secret(stripe, allowed_names=["session_token"]) is not None
    value = json.dumps({"payload": json.dumps({"config": {"session_token": "demo"}})})
    props = {"keyName": "config", "value": value, "namespaceId": "n"}
    assert run("kv-secrets-encrypted", constants.KV_ENTRY, "acme-config", props) != []
    allowed = {"allowedNames": ["session_token"], **ACME}
    assert run("kv-secrets-encrypted", constants.KV_ENTRY, "acme-config", props, allowed) == []


def test_high_entropy_heuristic() -> None:
    assert secretlike.looks_like_token("q7Vx2LmP9sKd4RtY8wZb3NcF6hJ1gA5e")
    assert secretlike.looks_like_token("3f1c9d2e8b7a6c5d4e3f2a1b0c9d8e7f")
    for ordinary in ("tenant-acme-cache-v1-2024", "ThisIsMyCacheKeyPrefixForTenants", "X-Hub-Signature-256",
                     "7c1e4b9a-3f2d-4e8b-9a6c-5d0f1e2a3b4c", "abc123", "aaaaaaaaaaaaaaaaaaaaaaa1"):  # fmt: skip
        assert not secretlike.looks_like_token(ordinary), ordinary


@pytest.mark.parametrize(
    ("value", "tenant", "ours"),
    [
        ("clawdbot-prod-acme", "acme", True),
        ("clawdbot-staging2-acme", "acme", True),
        ("clawdbot-prod-eu-acme", "acme", False),  # tenant eu-acme's name, not acme's
        ("clawdbot-prod-eu-acme", "eu-acme", True),
        ("clawdbot--acme", "acme", False),
    ],
)
def test_tenant_names_without_a_known_environment(value: str, tenant: str, ours: bool) -> None:
    tenancy = importlib.import_module("clawdbot_policies.rules.tenancy")
    assert tenancy.is_tenant_name(value, tenant, None) is ours


def test_relay_key_binding_passes_and_fails() -> None:
    assert run("relay-key-binding", constants.SCRIPT, "acme-worker", worker(RELAY)) == []
    assert run("relay-key-binding", constants.SCRIPT, "acme-worker", worker()) == [
        'Worker clawdbot-prod-acme has no RELAY_KEY binding; bind the tenant\'s relay key as {"name": "RELAY_KEY", '
        '"type": "secret_text", "text": <RandomBytes.base64>}.'
    ]
    twice = run("relay-key-binding", constants.SCRIPT, "acme-worker", worker(RELAY, RELAY))
    assert twice == ["Worker clawdbot-prod-acme binds RELAY_KEY 2 times; keep exactly one."]
    no_text = run("relay-key-binding", constants.SCRIPT, "w", worker({"name": "RELAY_KEY", "type": "secret_text"}))
    assert no_text and "has no text" in no_text[0]


def test_plaintext_binding_message_says_what_to_change_without_the_value() -> None:
    bad = {"name": "SETTINGS", "type": "plain_text", "text": "xoxb-1234567890-abcdefghij"}
    [message] = run("no-plaintext-secret-bindings", constants.SCRIPT, "acme-worker", worker(RELAY, bad))
    assert "looks like a Slack token" in message and "clawdbot:secrets" in message and "xoxb" not in message
    allowed = {"allowedNames": ["PUBLIC_KEY_ID"], **ACME}
    ok = {"name": "PUBLIC_KEY_ID", "type": "plain_text", "text": "k1"}
    assert run("no-plaintext-secret-bindings", constants.SCRIPT, "w", worker(ok), allowed) == []


def test_kv_envelope_from_the_real_sealer_passes() -> None:
    envelope = seal_secret(bytes(32), "acme", "STRIPE_KEY", "sk_live_51HxAbCdEfGhIjKlMnOp")
    props = {"keyName": "secret:STRIPE_KEY", "value": envelope, "namespaceId": "n"}
    assert run("kv-secrets-encrypted", constants.KV_ENTRY, "acme-secret-stripe-key", props) == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ({"name": "OTHER"}, "another secret name"),
        ({"v": 2}, "is not v=1"),
        ({"iv": "AAAA"}, "iv is not 12 bytes"),
        ({"ct": "!!"}, "ct is not base64"),
        ({"plaintext": "x"}, "unexpected fields plaintext"),
    ],
)
def test_kv_envelope_problems(edit: dict[str, Any], problem: str) -> None:
    envelope = json.loads(seal_secret(bytes(32), "acme", "STRIPE_KEY", "s3cret"))
    found = secrets_rules.envelope_problem(json.dumps({**envelope, **edit}), "acme", "STRIPE_KEY")
    assert found is not None and problem in found


def test_route_and_domain_zone_checks() -> None:
    good = {"pattern": "shop.acme.example.com/*", "zoneId": "a" * 32, "script": "clawdbot-prod-acme"}
    assert run("routes-in-tenant-zone", constants.ROUTE, "acme-route-0", good) == []
    wildcard = {**good, "pattern": "*.acme.example.com/*"}
    assert run("routes-in-tenant-zone", constants.ROUTE, "acme-route-0", wildcard) == []
    lookalike = {**good, "pattern": "shop.notacme.example.com/*"}
    assert len(run("routes-in-tenant-zone", constants.ROUTE, "acme-route-0", lookalike)) == 1
    domain = {"hostname": "edge.acme.example.com", "zoneId": "a" * 32, "zoneName": "evil.example.com"}
    [message] = run("routes-in-tenant-zone", constants.CUSTOM_DOMAIN, "acme-domain-0", domain)
    assert message == "Custom domain acme-domain-0 names zone evil.example.com, not acme.example.com."


def test_unknown_zone_fails_closed() -> None:
    props = {"pattern": "shop.acme.example.com/*", "zoneId": "a" * 32}
    [message] = run("routes-in-tenant-zone", constants.ROUTE, "acme-route-0", props, {"tenantId": "acme"})
    assert "zone of tenant acme is unknown" in message and "clawdbot:tenant.zone" in message


@pytest.mark.parametrize(
    ("pattern", "apex"),
    [("acme.example.com/*", True), ("*acme.example.com/*", True), ("acme.example.com/api/*", False),
     ("*.acme.example.com/*", False), ("shop.acme.example.com/*", False)],
)  # fmt: skip
def test_apex_catch_all(pattern: str, apex: bool) -> None:
    assert zones.is_apex_catch_all(pattern, "acme.example.com") is apex
    props = {"pattern": pattern, "zoneId": "a" * 32}
    assert bool(run("no-apex-catch-all-route", constants.ROUTE, "acme-route-0", props)) is apex
    allowed = {**ACME, "allowApexCatchAll": True}
    assert run("no-apex-catch-all-route", constants.ROUTE, "acme-route-0", props, allowed) == []


def test_d1_protection_reads_resource_options() -> None:
    props = {"name": "clawdbot-prod-acme"}
    assert run("d1-protected", constants.D1_DATABASE, "acme-db", props, protect=True) == []
    [message] = run("d1-protected", constants.D1_DATABASE, "acme-db", props)
    assert "protect=True" in message and "clawdbot-prod-acme" in message


def test_naming_uses_environment_when_known_and_suffix_otherwise() -> None:
    props = {"title": "clawdbot-staging-acme"}
    [message] = run("tenant-resource-naming", constants.KV_NAMESPACE, "acme-kv", props)
    assert message == "acme-kv: title 'clawdbot-staging-acme' does not belong to tenant acme; use 'clawdbot-prod-acme'."
    assert run("tenant-resource-naming", constants.KV_NAMESPACE, "acme-kv", props, {"tenantId": "acme"}) == []
    other = {"title": "clawdbot-prod-acmecorp"}
    assert run("tenant-resource-naming", constants.KV_NAMESPACE, "acme-kv", other, {"tenantId": "acme"})


def test_platform_stack_is_not_applicable_to_tenant_rules() -> None:
    policy = PACK.policy("tenant-resource-naming")
    assert isinstance(policy, ResourceValidationPolicy)
    urn = "urn:pulumi:prod::clawdbot::cloudflare:index/workersKvNamespace:WorkersKvNamespace::shared"
    args = ResourceValidationArgs(constants.KV_NAMESPACE, {"title": "x"}, urn, "shared", opts(), None, {})
    with pytest.raises(_NotApplicableError):
        policy.validate(args, ignore)


def test_compatibility_date_limits() -> None:
    assert "in the future" in run("compatibility-date-fresh", constants.SCRIPT, "w", worker(RELAY))[0]
    stale = worker(RELAY, compatibilityDate="2021-11-03")
    assert "days old (limit 365)" in run("compatibility-date-fresh", constants.SCRIPT, "w", stale)[0]
    assert run("compatibility-date-fresh", constants.SCRIPT, "w", stale, {"maxAgeDays": 100000.0}) == []
    assert (
        "not YYYY-MM-DD" in run("compatibility-date-fresh", constants.SCRIPT, "w", worker(compatibilityDate="soon"))[0]
    )


def test_cron_limit_and_duplicates() -> None:
    five = {"scriptName": "s", "schedules": [{"cron": f"{m} * * * *"} for m in range(5)]}
    assert run("cron-schedules-limit", constants.CRON_TRIGGER, "acme-cron", five) == []
    assert run("cron-schedules-limit", constants.CRON_TRIGGER, "acme-cron", five, {"maxSchedules": 4.0})
    dup = {"scriptName": "s", "schedules": [{"cron": "0 * * * *"}, {"cron": "0 * * * *"}]}
    assert "same schedule twice" in run("cron-schedules-limit", constants.CRON_TRIGGER, "acme-cron", dup)[0]


def test_reading_an_unknown_raises_like_the_analyzer() -> None:
    props = unknown_checking_proxy(
        {"scriptName": "s", "bindings": [{"name": "RELAY_KEY", "type": UNKNOWN_STRING_VALUE}]}
    )
    policy = PACK.policy("relay-key-binding")
    assert isinstance(policy, ResourceValidationPolicy)
    args = ResourceValidationArgs(constants.SCRIPT, props, URN, "acme-worker", opts(), None, ACME)
    with pytest.raises(UnknownValueError):
        policy.validate(args, ignore)


def test_context_from_engine_stack_config(monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = {"id": "acme", "zone": {"id": "z" * 32, "name": "acme.example.com"}, "allow_apex_catch_all": True}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"clawdbot:tenant": json.dumps(tenant)}))
    resolved = context.resolve({}, urns=["urn:pulumi:prod.other::clawdbot::t::n"])
    assert (resolved.tenant_id, resolved.zone_name, resolved.allow_apex_catch_all) == ("acme", "acme.example.com", True)
    assert context.resolve({"tenantId": "beta"}).tenant_id == "beta"  # policy config wins


def test_context_inferred_from_stack_name_or_component(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_STACK", raising=False)
    assert context.resolve({}, urns=["urn:pulumi:prod.globex::clawdbot::t::n"]).tenant_id == "globex"
    assert context.resolve({}, urns=["urn:pulumi:dev::clawdbot::t::n"], component_name="initech").tenant_id == "initech"
    assert context.resolve({}, urns=["urn:pulumi:prod::clawdbot::t::n"]).tenant_id is None
