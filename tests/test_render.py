"""render: pure, deterministic, embeds the last-known-good config as JSON, hashes everything."""

from __future__ import annotations

import json
import re
import subprocess

from tenant_fixtures import tenant

from orchestrator.config.tenant_config import load_platform_spec
from orchestrator.core.contract import REPO_ROOT, WORKER_SRC, contract
from orchestrator.core.model import PlatformSpec, TenantSpec
from orchestrator.core.render import MAIN_MODULE, render_bundle, split_embedded

PLATFORM = PlatformSpec.model_validate(
    {"account_id": "0123456789abcdef0123456789abcdef", "compatibility_date": "2025-09-01"}
)


def _bundle(**overrides: object):  # type: ignore[no-untyped-def]
    return render_bundle(TenantSpec.model_validate(tenant(**overrides)), PLATFORM)


def _embedded(bundle) -> dict:  # type: ignore[no-untyped-def,type-arg]
    embedded: dict = json.loads(split_embedded(bundle.module(MAIN_MODULE).content)[1])  # type: ignore[type-arg]
    return embedded


def test_same_spec_renders_the_same_bytes_and_hash() -> None:
    first, second = _bundle(), _bundle()
    assert first == second
    assert re.fullmatch(r"[0-9a-f]{64}", first.bundle_hash)


def test_hash_changes_with_anything_deployed() -> None:
    base = _bundle().bundle_hash
    changed = {
        "config": _bundle(config={"greeting": "other"}).bundle_hash,
        "version": _bundle(config_version=3).bundle_hash,
        "route": _bundle(routes=["x.acme.example.com/*"]).bundle_hash,
        "cron": _bundle(crons=["0 * * * *"]).bundle_hash,
        "secret names": _bundle(secret_names=["WEBHOOK_SECRET", "OTHER"]).bundle_hash,
        "rotation": _bundle(relay_key_generation=2).bundle_hash,
        "compat": _bundle(compatibility_date="2025-01-01").bundle_hash,
    }
    assert all(h != base for h in changed.values()), changed
    assert len(set(changed.values())) == len(changed)


def test_embedded_module_carries_config_contract_and_hash_as_json() -> None:
    bundle = _bundle()
    embedded = _embedded(bundle)
    assert embedded["config"] == {"tenant": "acme", "version": 2, "config": tenant()["config"]}
    assert json.loads(bundle.config_payload) == embedded["config"]
    assert embedded["contract"] == contract()
    assert embedded["bundle_hash"] == bundle.bundle_hash
    assert embedded["migrations"] == [m.name for m in bundle.migrations]
    assert embedded["secret_names"] == ["WEBHOOK_SECRET"]


def test_hostile_config_text_cannot_break_out_of_the_module() -> None:
    # tojson escapes <, >, & and quotes: the text stays a JSON string, never code.
    hostile = '"; globalThis.pwned = 1; //</script>\u2028`${x}`'
    bundle = _bundle(config={"greeting": hostile})
    text = bundle.module(MAIN_MODULE).content
    assert "</script>" not in text
    assert _embedded(bundle)["config"]["config"]["greeting"] == hostile
    # Node parses the embedded line and sees exactly the string, nothing executed.
    _before, literal, _after = split_embedded(text)
    script = f"const EMBEDDED = {literal};"
    script += "\nprocess.stdout.write(EMBEDDED.config.config.greeting + '|' + String(globalThis.pwned));"
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout
    assert out == hostile + "|undefined"


def test_bundle_lists_bindings_kv_entries_and_migrations() -> None:
    bundle = _bundle(secret_names=["WEBHOOK_SECRET", "STRIPE_KEY"])
    assert {(b.name, b.type, b.target) for b in bundle.bindings} == {
        ("EDGE_KV", "kv_namespace", "kv"),
        ("EDGE_DB", "d1", "d1"),
        ("RELAY_KEY", "secret_text", "relay_key"),
        ("TENANT_ID", "plain_text", "acme"),
    }
    assert [e.key for e in bundle.kv_entries] == ["config", "secret:WEBHOOK_SECRET", "secret:STRIPE_KEY"]
    assert bundle.migrations and all(re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", m.name) for m in bundle.migrations)
    assert bundle.main_module == MAIN_MODULE and bundle.module(MAIN_MODULE).content
    assert bundle.script_name == bundle.kv_title == bundle.d1_name == "clawdbot-prod-acme"


def test_tenant_overrides_platform_compatibility() -> None:
    assert _bundle().compatibility_date == "2025-09-01"
    override = _bundle(compatibility_date="2025-10-01", compatibility_flags=["nodejs_compat"])
    assert (override.compatibility_date, override.compatibility_flags) == ("2025-10-01", ("nodejs_compat",))


def test_render_imports_no_pulumi() -> None:
    code = "import sys, orchestrator.core.render; print(any(m.split('.')[0] == 'pulumi' for m in sys.modules))"
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_health_host_is_one_that_routes_the_health_path() -> None:
    # A route limited to /hooks/* would send /_edge/health to the origin, not the Worker.
    routes = ["acme.example.com/hooks/*", "www.acme.example.com/*"]
    assert _bundle(routes=routes, custom_domains=[]).health_host == "www.acme.example.com"
    assert _bundle(routes=routes).health_host == "edge.acme.example.com"
    assert _bundle(routes=["acme.example.com/hooks/*"], custom_domains=[]).health_host is None
    assert _bundle(routes=["*.acme.example.com/*"], custom_domains=[]).health_host is None


def test_wrangler_dev_config_agrees_with_what_pulumi_deploys() -> None:
    # wrangler.jsonc cannot read the contract, so its literals are checked against it here.
    text = re.sub(r"^\s*//.*$", "", (WORKER_SRC / "wrangler.jsonc").read_text(), flags=re.M)
    jsonc = json.loads(re.sub(r",(\s*[}\]])", r"\1", text))
    bindings = contract()["bindings"]
    assert jsonc["compatibility_date"] == load_platform_spec(REPO_ROOT).compatibility_date.isoformat()
    assert [kv["binding"] for kv in jsonc["kv_namespaces"]] == [bindings["kv"]]
    assert [db["binding"] for db in jsonc["d1_databases"]] == [bindings["d1"]]
    assert jsonc["d1_databases"][0]["migrations_table"] == contract()["migrations_table"]
    assert set(jsonc["vars"]) == {bindings["tenant_id"]}
