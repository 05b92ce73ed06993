"""The mocks refuse what Cloudflare or the provider would refuse (a mock that accepts all proves nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_cloudflare as cf
import pytest
from tenant_fixtures import CANARY

from components.tenant_edge import TenantEdge, TenantEdgeArgs
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.render import EdgeBundle, render_bundle
from orchestrator.offline.cloudflare_mock import FakeAccount
from orchestrator.offline.errors import ProviderRejected
from orchestrator.offline.session import OfflineSession

ACCOUNT = "0123456789abcdef0123456789abcdef"
ZONE_ID = "3f1c9d2e8b7a6c5d4e3f2a1b0c9d8e7f"  # the acme example's zone


def _acme() -> EdgeBundle:
    return render_bundle(load_tenant_spec(REPO_ROOT, "prod.acme"), load_platform_spec(REPO_ROOT))


def _edge(name: str, bundle: EdgeBundle) -> TenantEdge:
    secrets = {n: pulumi.Output.secret(CANARY) for n in bundle.secret_names}
    return TenantEdge(name, TenantEdgeArgs(bundle=bundle, account_id=ACCOUNT, zone_id=ZONE_ID, secrets=secrets))


def _run(*_: object) -> None:
    """Lets a one-line lambda create several resources (their creation is the test)."""


def _refused(program: Callable[[], None]) -> str:
    account = FakeAccount(zones={ZONE_ID: "acme.example.com"})
    session = OfflineSession(REPO_ROOT, "prod.test", account=account, config={}, program=program)
    with pytest.raises(ProviderRejected) as caught:
        session.run()
    assert CANARY not in str(caught.value)
    return str(caught.value)


def _script(bindings: list[Any], **overrides: Any) -> None:
    args: dict[str, Any] = {
        "account_id": ACCOUNT,
        "script_name": "clawdbot-prod-x",
        "main_module": "index.js",
        "content": "export default {}",
        "compatibility_date": "2025-09-01",
        "bindings": bindings,
    }
    args.update(overrides)
    cf.WorkersScript("x-worker", **args)


CASES: list[tuple[str, Callable[[], None], str]] = [
    (
        "binding-type-with-doc-artifact",
        lambda: _script([{"name": "KV", "type": "kv*namespace", "namespace_id": "n"}]),
        "binding 'KV' has unknown type 'kv*namespace'",
    ),
    (
        "kv-binding-without-namespace",
        lambda: _script([{"name": "KV", "type": "kv_namespace"}]),
        "binding 'KV' of type kv_namespace is missing namespaceId",
    ),
    ("d1-binding-without-id", lambda: _script([{"name": "DB", "type": "d1"}]), "missing id"),
    ("secret-without-text", lambda: _script([{"name": "K", "type": "secret_text"}]), "missing text"),
    (
        "binding-name-twice",
        lambda: _script([{"name": "A", "type": "ai"}, {"name": "A", "type": "browser"}]),
        "binding name 'A' is used twice",
    ),
    ("binding-without-type", lambda: _script([{"name": "A"}]), "every binding needs name and type"),
    ("script-name-uppercase", lambda: _script([], script_name="Clawdbot"), "script name 'Clawdbot'"),
    ("script-without-content", lambda: _script([], content=None), "no content"),
    ("script-both-syntaxes", lambda: _script([], body_part="worker.js"), "exactly one of main_module"),
    ("compat-date-garbage", lambda: _script([], compatibility_date="soon"), "is not YYYY-MM-DD"),
    ("compat-date-future", lambda: _script([], compatibility_date="2999-01-01"), "is in the future"),
    (
        "duplicate-component-names",
        lambda: _run(_edge("acme", _acme()), _edge("acme", _acme())),
        "duplicate resource URN",
    ),
    (
        "route-outside-zone",
        lambda: _run(_edge("acme", _acme().model_copy(update={"routes": ("evil.example.org/*",)}))),
        "route 'evil.example.org/*' is outside zone acme.example.com",
    ),
    (
        "domain-outside-zone",
        lambda: _run(_edge("acme", _acme().model_copy(update={"custom_domains": ("edge.example.org",)}))),
        "custom domain 'edge.example.org' is not a hostname in zone",
    ),
    (
        "cron-invalid",
        lambda: _run(_edge("acme", _acme().model_copy(update={"crons": ("every minute",)}))),
        "must have 5 fields",
    ),
    (
        "d1-hint-invalid",
        lambda: _run(_edge("acme", _acme().model_copy(update={"d1_location_hint": "mars"}))),
        "primary_location_hint 'mars'",
    ),
    (
        "kv-title-taken-by-second-component",
        lambda: _run(_edge("acme", _acme()), _edge("other", _acme())),
        "already exists in the account",
    ),
    (
        "kv-entry-in-missing-namespace",
        lambda: _run(cf.WorkersKv("k", account_id=ACCOUNT, namespace_id="nope", key_name="config", value="v")),
        "KV namespace 'nope' does not exist",
    ),
    (
        "kv-key-too-long",
        lambda: _run(
            ns := cf.WorkersKvNamespace("n", account_id=ACCOUNT, title="t"),
            cf.WorkersKv("k", account_id=ACCOUNT, namespace_id=ns.id, key_name="k" * 513, value="v"),
        ),
        "KV key must be 1-512 bytes",
    ),
    (
        "kv-ttl-too-short",
        lambda: _run(
            ns := cf.WorkersKvNamespace("n", account_id=ACCOUNT, title="t"),
            cf.WorkersKv("k", account_id=ACCOUNT, namespace_id=ns.id, key_name="k", value="v", expiration_ttl=30),
        ),
        "expiration_ttl must be at least 60",
    ),
    (
        "route-to-unknown-zone",
        lambda: _run(cf.WorkersRoute("r", zone_id="f" * 32, pattern="a.example.com/*")),
        "is not in the account",
    ),
    (
        "unmodelled-type",
        lambda: _run(cf.R2Bucket("b", account_id=ACCOUNT, name="b")),
        "is not modelled",
    ),
]


@pytest.mark.parametrize(("program", "message"), [(p, m) for _, p, m in CASES], ids=[i for i, _, _ in CASES])
def test_mock_refuses_like_cloudflare(program: Callable[[], None], message: str) -> None:
    assert message in _refused(program)


def test_unexpected_invoke_fails_loudly() -> None:
    def program() -> None:
        cf.get_zone_output(zone_id=ZONE_ID)

    with pytest.raises(ProviderRejected, match="unexpected invoke"):
        OfflineSession(REPO_ROOT, "prod.test", account=FakeAccount(), config={}, program=program).run()


def test_a_well_formed_script_is_accepted() -> None:
    def program() -> None:
        _script([{"name": "A", "type": "ai"}, {"name": "T", "type": "plain_text", "text": "x"}])

    result = OfflineSession(REPO_ROOT, "prod.test", account=FakeAccount(), config={}, program=program).run()
    assert [r.name for r in result.resources] == ["x-worker"]
