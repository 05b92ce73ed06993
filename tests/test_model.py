"""Invalid tenant config: rejected in one line naming stack and key path, before any resource."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tenant_fixtures import CANARY, ZONE_ID, session, stack_config, tenant

from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec, tenant_stacks
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import ConfigError
from orchestrator.core.model import PlatformSpec, TenantSpec

FUTURE = (dt.date.today() + dt.timedelta(days=30)).isoformat()

# (case id, stack config, substring the one-line error must contain: the key path at fault)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("id-uppercase", stack_config(tenant(id="Acme")), "clawdbot:tenant.id:"),
    ("id-too-long", stack_config(tenant(id="a" * 33)), "clawdbot:tenant.id:"),
    ("id-underscore", stack_config(tenant(id="ac_me")), "clawdbot:tenant.id:"),
    ("id-not-stack", stack_config(tenant(id="globex")), "does not match the stack name"),
    ("zone-id-not-hex", stack_config(tenant(zone={"id": "zone-1", "name": "acme.example.com"})), ".zone.id:"),
    ("zone-name-bad", stack_config(tenant(zone={"id": ZONE_ID, "name": "Acme..com"})), ".zone.name:"),
    ("route-outside-zone", stack_config(tenant(routes=["shop.evil.example.org/*"])), ".routes[0]:"),
    ("route-no-path", stack_config(tenant(routes=["shop.acme.example.com"])), ".routes:"),
    ("route-duplicate", stack_config(tenant(routes=["a.acme.example.com/*", "a.acme.example.com/*"])), ".routes:"),
    ("route-suffix-trick", stack_config(tenant(routes=["evilacme.example.com/*"])), ".routes[0]:"),
    ("domain-outside-zone", stack_config(tenant(custom_domains=["edge.other.net"])), ".custom_domains[0]:"),
    ("domain-wildcard", stack_config(tenant(custom_domains=["*.acme.example.com"])), ".custom_domains[0]:"),
    ("cron-four-fields", stack_config(tenant(crons=["* * * *"])), ".crons:"),
    ("cron-minute-61", stack_config(tenant(crons=["61 * * * *"])), ".crons:"),
    ("cron-too-many", stack_config(tenant(crons=[f"{m} * * * *" for m in range(6)])), ".crons:"),
    ("compat-future", stack_config(tenant(compatibility_date=FUTURE)), ".compatibility_date:"),
    ("compat-too-old", stack_config(tenant(compatibility_date="2020-01-01")), ".compatibility_date:"),
    ("compat-flag-bad", stack_config(tenant(compatibility_flags=["Node Compat"])), ".compatibility_flags[0]:"),
    ("d1-hint-unknown", stack_config(tenant(d1_location_hint="mars")), ".d1_location_hint:"),
    ("config-version-zero", stack_config(tenant(config_version=0)), ".config_version:"),
    ("config-version-beyond-js", stack_config(tenant(config_version=2**53)), ".config_version:"),
    ("config-too-big", stack_config(tenant(config={"blob": "x" * (1024 * 1024 + 1)})), ".config:"),
    ("secret-name-lowercase", stack_config(tenant(secret_names=["webhook"]), {"webhook": CANARY}), ".secret_names[0]:"),
    (
        "secret-missing-value",
        stack_config(tenant(secret_names=["WEBHOOK_SECRET", "STRIPE_KEY"])),
        "secrets.STRIPE_KEY:",
    ),
    ("secret-undeclared", stack_config(secrets={"WEBHOOK_SECRET": CANARY, "EXTRA": CANARY}), "secrets.EXTRA:"),
    ("secret-not-string", stack_config(secrets={"WEBHOOK_SECRET": 42}), "secrets.WEBHOOK_SECRET:"),
    ("unknown-field", stack_config(tenant(routez=[])), ".routez:"),
    ("limits-cpu-too-low", stack_config(tenant(limits={"cpu_ms": 5})), ".limits.cpu_ms:"),
    ("relay-generation-zero", stack_config(tenant(relay_key_generation=0)), ".relay_key_generation:"),
    ("tenant-missing", {"clawdbot:secrets": {}}, "clawdbot:tenant: missing"),
    (
        "provider-endpoint-override",
        {**stack_config(), "cloudflare:baseUrl": "https://api.cloudflare.com/client/v4"},
        "cloudflare:baseUrl: must not be set on a tenant stack",
    ),
    ("tenant-not-object", {"clawdbot:tenant": ["acme"]}, "clawdbot:tenant: must be an object"),
    # What YAML would coerce is refused, not coerced (pydantic strict mode).
    ("version-as-text", stack_config(tenant(config_version="3")), ".config_version: Input should be a valid integer"),
    ("version-as-float", stack_config(tenant(config_version=3.5)), ".config_version: Input should be a valid integer"),
    ("version-as-bool", stack_config(tenant(config_version=True)), ".config_version: Input should be a valid integer"),
    (
        "apex-as-text",
        stack_config(tenant(allow_apex_catch_all="yes")),
        ".allow_apex_catch_all: Input should be a valid boolean",
    ),
    (
        "apex-as-number",
        stack_config(tenant(allow_apex_catch_all=1)),
        ".allow_apex_catch_all: Input should be a valid boolean",
    ),
    (
        "compat-epoch",
        stack_config(tenant(compatibility_date=1767225600)),
        ".compatibility_date: must be a date written YYYY-MM-DD",
    ),
    (
        "compat-slashes",
        stack_config(tenant(compatibility_date="2026/01/01")),
        ".compatibility_date: must be a date written",
    ),
    (
        "compat-not-a-day",
        stack_config(tenant(compatibility_date="2026-02-30")),
        ".compatibility_date: '2026-02-30' is not a calendar",
    ),
    (
        "limits-as-text",
        stack_config(tenant(limits={"cpu_ms": "50"})),
        ".limits.cpu_ms: Input should be a valid integer",
    ),
    (
        "generation-as-text",
        stack_config(tenant(relay_key_generation="2")),
        ".relay_key_generation: Input should be a valid",
    ),
    ("routes-as-text", stack_config(tenant(routes="shop.acme.example.com/*")), ".routes: Input should be a valid list"),
    (
        "zone-id-as-number",
        stack_config(tenant(zone={"id": 12, "name": "acme.example.com"})),
        ".zone.id: Input should be",
    ),
    ("secret-names-as-text", stack_config(tenant(secret_names="WEBHOOK_SECRET")), ".secret_names: Input should be"),
    # Unknown clawdbot: keys are refused with a did-you-mean, never ignored.
    (
        "unknown-key-secret",
        {**stack_config(), "clawdbot:secret": {}},
        "clawdbot:secret: unknown key; did you mean clawdbot:secrets?",
    ),
    ("unknown-key-tenants", {**stack_config(), "clawdbot:tenants": {}}, "did you mean clawdbot:tenant?"),
    (
        "unknown-key-namespace-slip",
        {**stack_config(), "clawbot:secrets": {}},
        "clawbot:secrets: unknown key; did you mean",
    ),
    ("unknown-key-platform-here", {**stack_config(), "clawdbot:platform": {}}, "clawdbot:platform: unknown key"),
    # What the engine hands the program, when it is not an object.
    ("tenant-as-text", {**stack_config(), "clawdbot:tenant": "acme"}, "clawdbot:tenant: must be an object, not text"),
    (
        "tenant-as-number",
        {**stack_config(), "clawdbot:tenant": "3"},
        "clawdbot:tenant: must be an object, not a number",
    ),
    (
        "tenant-bad-json",
        {**stack_config(), "clawdbot:tenant": '{"id": "acme", NaN}'},
        "clawdbot:tenant: is not valid JSON",
    ),
    (
        "tenant-json-nan",
        {**stack_config(), "clawdbot:tenant": '{"id": "acme", "config": {"r": NaN}}'},
        "NaN is not JSON",
    ),
    (
        "config-nan",
        stack_config(tenant(config={"r": float("nan")})),
        "clawdbot:tenant: is not valid JSON (NaN is not JSON",
    ),
    (
        "secrets-as-list",
        {**stack_config(), "clawdbot:secrets": ["WEBHOOK_SECRET"]},
        "clawdbot:secrets: must be an object",
    ),
]


@pytest.mark.parametrize(("config", "path"), [(c, p) for _, c, p in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_config_fails_in_one_line_before_any_resource(config: dict[str, Any], path: str) -> None:
    run = session(config)
    with pytest.raises(ConfigError) as caught:
        run.run()
    message = str(caught.value)
    assert message.startswith("stack prod.acme: "), message
    assert path in message, message
    assert "\n" not in message
    assert CANARY not in message
    assert run.monitor.registered == [], [r.urn for r in run.monitor.registered]


def test_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 50


# The engine hands the program every value decrypted and marks whole top-level keys secret when any
# value under them is `secure:` (pulumi sdk/go/common/resource/config/value.go: `c.secure =
# hasSecureValue(obj)`; the language host passes them as configSecretKeys / PULUMI_CONFIG_SECRET_KEYS
# to `pulumi.runtime.set_all_config`, read back by `pulumi.runtime.is_config_secret`). That key-level
# flag is all the program can see, so these cases vary it.
ENGINE_SECRET_FLAGS: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("secrets-all-plain", stack_config(), [], "clawdbot:secrets.WEBHOOK_SECRET: is not encrypted"),
    (
        "secrets-all-plain-says-how",
        stack_config(),
        [],
        "set it with `python -m orchestrator secrets set acme WEBHOOK_SECRET`",
    ),
    (
        "tenant-is-a-secret",
        stack_config(),
        ["clawdbot:secrets", "clawdbot:tenant"],
        "clawdbot:tenant: a secret cannot sit here",
    ),
]


@pytest.mark.parametrize(
    ("config", "secret_keys", "message"),
    [(c, k, m) for _, c, k, m in ENGINE_SECRET_FLAGS],
    ids=[i for i, _, _, _ in ENGINE_SECRET_FLAGS],
)
def test_secrets_the_engine_marks_are_checked_before_any_resource(
    config: dict[str, Any], secret_keys: list[str], message: str
) -> None:
    run = session(config, secret_keys=secret_keys)
    with pytest.raises(ConfigError) as caught:
        run.run()
    assert str(caught.value).startswith("stack prod.acme: ") and message in str(caught.value)
    assert CANARY not in str(caught.value)
    assert run.monitor.registered == []


def test_the_platform_stack_refuses_the_same_way() -> None:
    platform = {"account_id": "0" * 32, "compatibility_date": "2026-01-01"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"clawdbot:platform": {**platform, "observability": "yes"}}, "clawdbot:platform.observability: Input should"),
        ({"clawdbot:platform": platform, "clawdbot:platfrom": {}}, "did you mean clawdbot:platform?"),
        ({"clawdbot:platform": "prod"}, "clawdbot:platform: must be an object, not text"),
    ]
    for config, message in cases:
        run = session(config, stack="prod")
        with pytest.raises(ConfigError, match=r"^stack prod: ") as caught:
            run.run()
        assert message in str(caught.value)
        assert run.monitor.registered == []


def test_valid_config_registers_resources() -> None:
    assert session(stack_config()).run().resources


def test_example_stacks_are_valid() -> None:
    stacks = tenant_stacks(REPO_ROOT)
    assert len(stacks) >= 2
    for stack in stacks:
        spec = load_tenant_spec(REPO_ROOT, stack)
        assert stack == f"prod.{spec.id}"
    assert load_platform_spec(REPO_ROOT).environment == "prod"


def test_missing_stack_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"stack prod\.nope: no stack file .*Pulumi\.prod\.nope\.yaml"):
        load_tenant_spec(tmp_path, "prod.nope")


def test_unparseable_stack_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.prod.acme.yaml").write_text("config: [unclosed\n")
    with pytest.raises(ConfigError, match=r"stack prod\.acme: .*Pulumi\.prod\.acme\.yaml:2: not valid YAML"):
        load_tenant_spec(tmp_path, "prod.acme")


def test_wildcard_subdomain_route_inside_zone_is_accepted() -> None:
    spec = TenantSpec.model_validate(tenant(routes=["*.acme.example.com/*", "acme.example.com/api/*"]))
    assert spec.hostnames() == ["edge.acme.example.com", "acme.example.com"]


@pytest.mark.parametrize("environment", ["prod-eu", "Prod", "1prod", "p"])
def test_environment_names_split_one_way(environment: str) -> None:
    platform = {"account_id": "0" * 32, "compatibility_date": "2026-01-01", "environment": environment}
    with pytest.raises(ValidationError):
        PlatformSpec.model_validate(platform)
