"""The Pulumi program under provider-faithful mocks: graph, outputs, isolation, secrets."""

from __future__ import annotations

import json
import logging
from typing import Any

import pulumi
import pytest
from tenant_fixtures import CANARY, ZONE_ID, account, run, stack_config, tenant

from components.tenant_edge import TenantEdge, TenantEdgeArgs
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec, tenant_stacks
from orchestrator.core import crypto, outputs
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.render import render_bundle
from orchestrator.core.resource_types import (
    CRON,
    CUSTOM_DOMAIN,
    D1,
    DYNAMIC,
    KV,
    KV_NAMESPACE,
    RANDOM_BYTES,
    ROUTE,
    SCRIPT,
)
from orchestrator.offline.cloudflare_mock import FakeAccount
from orchestrator.offline.errors import ProviderRejected
from orchestrator.offline.session import UNKNOWN, OfflineRun, OfflineSession, project_account, run_offline

COMPONENT = "clawdbot:edge:TenantEdge"


def _relay_key(result: OfflineRun, session: OfflineSession | None = None) -> str:
    script = result.of_type(SCRIPT)[0]
    relay = next(b for b in script.inputs["bindings"] if b["name"] == "RELAY_KEY")
    value: str = relay["text"]
    return value


@pytest.mark.parametrize("stack", tenant_stacks(REPO_ROOT))
def test_example_tenant_graph(stack: str) -> None:
    spec = load_tenant_spec(REPO_ROOT, stack)
    result = run_offline(REPO_ROOT, stack)
    by_name = {r.name: r for r in result.resources}
    tid = spec.id
    expected = {
        tid: COMPONENT,
        f"{tid}-relay-key": RANDOM_BYTES,
        f"{tid}-kv": KV_NAMESPACE,
        f"{tid}-config": KV,
        f"{tid}-db": D1,
        f"{tid}-migrations": DYNAMIC,
        f"{tid}-worker": SCRIPT,
        f"{tid}-cron": CRON,
        **{f"{tid}-secret-{n.lower().replace('_', '-')}": KV for n in spec.secret_names},
        **{f"{tid}-route-{i}": ROUTE for i in range(len(spec.routes))},
        **{f"{tid}-domain-{i}": CUSTOM_DOMAIN for i in range(len(spec.custom_domains))},
    }
    assert {n: r.type for n, r in by_name.items()} == expected
    component = by_name[tid]
    for resource in result.resources:
        if resource is not component:
            assert resource.parent_urn == component.urn, f"{resource.urn} must be parented to {component.urn}"
    assert by_name[f"{tid}-db"].protect, "D1 must be protected against deletion"
    assert by_name[f"{tid}-cron"].inputs["schedules"] == [{"cron": c} for c in spec.crons]
    for index, domain in enumerate(spec.custom_domains):
        assert by_name[f"{tid}-domain-{index}"].delete_before_replace, domain
    before_script = {by_name[f"{tid}-migrations"].urn, *(r.urn for r in result.of_type(KV))}
    assert before_script <= set(by_name[f"{tid}-worker"].dependencies), "schema and KV data must land before code"


@pytest.mark.parametrize("stack", tenant_stacks(REPO_ROOT))
def test_example_tenant_outputs(stack: str) -> None:
    spec = load_tenant_spec(REPO_ROOT, stack)
    bundle = render_bundle(spec, load_platform_spec(REPO_ROOT))
    result = run_offline(REPO_ROOT, stack)
    kv_ns = result.of_type(KV_NAMESPACE)[0]
    db = result.of_type(D1)[0]
    assert result.outputs[outputs.SCRIPT_NAME] == bundle.script_name
    assert result.outputs[outputs.BUNDLE_HASH] == bundle.bundle_hash
    assert result.outputs[outputs.CONFIG_VERSION] == spec.config_version
    assert result.outputs[outputs.HOSTNAMES] == list(bundle.hostnames)
    assert result.outputs[outputs.HEALTH_URL] == f"https://{bundle.health_host}/_edge/health"
    assert result.outputs[outputs.KV_NAMESPACE_ID] and result.outputs[outputs.D1_DATABASE_ID]
    script = result.of_type(SCRIPT)[0]
    bindings = {b["name"]: b for b in script.inputs["bindings"]}
    assert bindings["EDGE_KV"]["namespaceId"] == result.outputs[outputs.KV_NAMESPACE_ID]
    assert bindings["EDGE_DB"]["id"] == result.outputs[outputs.D1_DATABASE_ID]
    assert kv_ns.inputs["title"] == db.inputs["name"] == f"clawdbot-prod-{spec.id}"
    assert not result.secret_outputs, "no stack output may be a secret (nothing secret is exported)"


def test_script_is_the_one_linked_module_of_the_bundle() -> None:
    spec = load_tenant_spec(REPO_ROOT, "prod.acme")
    bundle = render_bundle(spec, load_platform_spec(REPO_ROOT))
    script = run_offline(REPO_ROOT, "prod.acme").of_type(SCRIPT)[0]
    assert [m.name for m in bundle.modules] == ["index.js"]
    assert script.inputs["mainModule"] == "index.js"
    assert script.inputs["content"] == bundle.module("index.js").content
    # `files` is optional: "Additional modules and data files to include in the multipart Worker upload"
    # (pulumi_cloudflare/workers_script.py, WorkersScriptArgs.files, in .venv): unset, not an empty map.
    assert "files" not in script.inputs
    assert script.inputs["compatibilityDate"] == bundle.compatibility_date
    assert script.inputs["observability"]["enabled"] is True


def test_two_tenants_in_one_account_do_not_collide() -> None:
    shared = project_account(REPO_ROOT)
    for stack in tenant_stacks(REPO_ROOT):
        assert run_offline(REPO_ROOT, stack, account=shared).resources
    assert len(shared.kv_titles) == len(shared.d1_names) == len(tenant_stacks(REPO_ROOT))
    assert len(shared.scripts) == len(tenant_stacks(REPO_ROOT))


def test_rerunning_a_stack_is_an_update_not_a_collision() -> None:
    shared = account()
    run(fake=shared)
    assert run(fake=shared).resources


def test_another_stack_claiming_a_tenants_names_is_refused_like_cloudflare() -> None:
    shared = account()
    run(fake=shared)
    bundle = render_bundle(load_tenant_spec(REPO_ROOT, "prod.acme"), load_platform_spec(REPO_ROOT))

    def impostor() -> None:
        args = TenantEdgeArgs(bundle=bundle, account_id="0" * 32, zone_id=ZONE_ID, secrets=_secrets(bundle))
        TenantEdge("impostor", args)

    session = OfflineSession(REPO_ROOT, "prod.impostor", account=shared, config={}, program=impostor)
    with pytest.raises(ProviderRejected, match="'clawdbot-prod-acme' already exists in the account"):
        session.run()
    refusals = "\n".join(session.mocks.rejections)
    assert "KV namespace title 'clawdbot-prod-acme' already exists" in refusals
    assert "D1 database 'clawdbot-prod-acme' already exists" in refusals


def _secrets(bundle: Any) -> dict[str, Any]:
    return {n: pulumi.Output.secret(CANARY) for n in bundle.secret_names}


def _everything_visible(result: OfflineRun, mask_secret_paths: bool) -> str:
    def strip(value: Any, path: str, secrets: tuple[str, ...]) -> Any:
        if mask_secret_paths and path in secrets:
            return "<secret>"
        if isinstance(value, dict):
            return {k: strip(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
        return value

    parts = [json.dumps(strip(r.inputs, "", r.secret_paths), default=str) for r in result.resources]
    parts.append(json.dumps(result.outputs, default=str))
    return "\n".join(parts)


def test_business_secret_never_appears_in_plaintext(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result = run()
    everything = _everything_visible(result, mask_secret_paths=False)
    assert CANARY not in everything, "the canary secret leaked into a registered input or output"
    assert CANARY not in caplog.text
    for resource in result.of_type(SCRIPT):
        assert CANARY not in resource.inputs["content"]
        for module in (resource.inputs.get("files") or {}).values():
            assert CANARY.encode() not in __import__("base64").b64decode(module["contentBase64"])


def test_secret_kv_entries_are_real_envelopes_and_pulumi_secrets() -> None:
    result = run()
    relay_key = crypto.relay_key_from_b64(_relay_key(result))
    entry = result.named("acme-secret-webhook-secret")
    assert entry.inputs["keyName"] == "secret:WEBHOOK_SECRET"
    assert "value" in entry.secret_paths and "value" in entry.additional_secret_outputs
    assert crypto.open_secret(relay_key, "acme", "WEBHOOK_SECRET", entry.inputs["value"]) == CANARY
    config = result.named("acme-config")
    assert "value" in config.secret_paths
    payload = crypto.verify_config(relay_key, "acme", config.inputs["value"])
    assert payload == {"tenant": "acme", "version": 2, "config": tenant()["config"]}


def test_relay_key_is_bound_as_secret_text_and_appears_only_as_a_secret() -> None:
    result = run()
    key = _relay_key(result)
    assert len(crypto.relay_key_from_b64(key)) == 32
    script = result.of_type(SCRIPT)[0]
    relay = next(b for b in script.inputs["bindings"] if b["name"] == "RELAY_KEY")
    assert relay["type"] == "secret_text"
    assert "bindings" in script.secret_paths, "the binding list holding the relay key must be a Pulumi secret"
    assert key not in _everything_visible(result, mask_secret_paths=True)
    assert result.named("acme-relay-key").additional_secret_outputs == ("base64", "hex")


def test_rotation_changes_the_key_and_every_envelope_in_one_run() -> None:
    first = run()
    rotated = run(stack_config(tenant(relay_key_generation=2)))
    assert _relay_key(first) != _relay_key(rotated)
    for name in ("acme-config", "acme-secret-webhook-secret"):
        assert first.named(name).inputs["value"] != rotated.named(name).inputs["value"], name
    key = crypto.relay_key_from_b64(_relay_key(rotated))
    assert (
        crypto.open_secret(key, "acme", "WEBHOOK_SECRET", rotated.named("acme-secret-webhook-secret").inputs["value"])
        == CANARY
    )


def test_preview_leaves_computed_values_unknown() -> None:
    result = OfflineSession(REPO_ROOT, "prod.acme", config=stack_config(), account=account(), preview=True).run()
    script = result.of_type(SCRIPT)[0]
    kv_binding = next(b for b in script.inputs["bindings"] if b["name"] == "EDGE_KV")
    assert kv_binding["namespaceId"] is UNKNOWN
    assert script.inputs["scriptName"] == "clawdbot-prod-acme"


def test_no_crons_still_registers_an_empty_trigger() -> None:
    result = run(stack_config(tenant(crons=[])))
    assert result.named("acme-cron").inputs["schedules"] == []


def test_platform_stack_builds_platform_component() -> None:
    result = run_offline(REPO_ROOT, "prod", account=FakeAccount())
    assert [r.type for r in result.resources] == ["clawdbot:edge:Platform"]
    assert result.outputs[outputs.ACCOUNT_ID] == load_platform_spec(REPO_ROOT).account_id
