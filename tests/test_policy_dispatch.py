"""The policy pack in dispatch mode: rules of their own, and the whole pack over a dispatch-mode project."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_policy_rules import run

from orchestrator.config.tenant_config import load_platform_spec
from orchestrator.core import dispatch, resource_types
from orchestrator.core.contract import REPO_ROOT, contract
from orchestrator.offline.policy_runner import check_stack, check_stacks
from orchestrator.ops.scratch import copy_examples, write_passphrase_file

constants = importlib.import_module("clawdbot_policies.constants")


@pytest.mark.parametrize(
    ("pack_name", "value"),
    [
        ("DISPATCH_NAMESPACE", resource_types.DISPATCH_NAMESPACE),
        ("DYNAMIC", resource_types.DYNAMIC),
        ("MAX_SCRIPT_TAGS", dispatch.MAX_TAGS),
        ("ROUTING_HOST_KEY_PREFIX", contract()["dispatch"]["host_key_prefix"]),
    ],
)
def test_pack_constants_match_the_orchestrator(pack_name: str, value: Any) -> None:
    assert getattr(constants, pack_name) == value


def test_platform_script_names_are_recognised_and_never_a_tenants() -> None:
    platform = load_platform_spec(REPO_ROOT)
    for role in ("dispatcher", "outbound"):
        name = dispatch.platform_name(platform, role)
        assert re.match(constants.PLATFORM_SCRIPT_RE, name), name
    assert not re.match(constants.PLATFORM_SCRIPT_RE, "clawdbot-prod-acme")
    assert not re.match(constants.PLATFORM_SCRIPT_RE, "clawdbot-prod-dispatch")


def test_the_namespace_must_be_protected() -> None:
    props = {"name": "clawdbot-prod", "accountId": "0" * 32}
    assert (
        run("dispatch-namespace-protected", resource_types.DISPATCH_NAMESPACE, "p-dispatch", props, protect=True) == []
    )
    (message,) = run("dispatch-namespace-protected", resource_types.DISPATCH_NAMESPACE, "p-dispatch", props)
    assert "clawdbot-prod is not protected" in message and "deletes every tenant's user Worker" in message


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        (["tenant-acme", "plan-standard"], None),
        ([f"t{i}" for i in range(8)] + ["tenant-acme"], "9 tags"),
        (["tenant-acme", "a,b"], "contain ','"),
        (["tenant-acme", "a&b"], "contain ','"),
        (["plan-standard"], "lacks the tag tenant-acme"),
    ],
)
def test_user_worker_tags(tags: list[str], problem: str | None) -> None:
    props = {"namespace": "clawdbot-prod", "script_name": "clawdbot-prod-acme", "tenant": "acme", "tags": tags}
    found = run("user-worker-tags", resource_types.DYNAMIC, "acme-user-worker", props)
    assert (found == []) if problem is None else any(problem in m for m in found), found


def test_d1_migrations_are_not_user_workers() -> None:
    props = {"account_id": "0" * 32, "database_id": "db", "migrations": []}
    assert run("user-worker-tags", resource_types.DYNAMIC, "acme-migrations", props) == []


def test_a_dispatch_mode_project_passes_the_whole_pack(tmp_path: Path) -> None:
    project = copy_examples(REPO_ROOT, tmp_path / "p", write_passphrase_file(tmp_path / "pp"), "dispatch")
    for stack in ("prod", "prod.acme", "prod.globex"):
        result, resources = check_stack(project.root, stack)
        assert resources, stack
        assert not result.failed, [v.line() for v in result.violations]


@pytest.mark.parametrize(
    ("intruder", "claims"),
    [
        ({"custom_domains": ["edge.acme.example.com"]}, 1),
        ({"routes": ["shop.acme.example.com/*"]}, 1),
        ({"routes": ["shop.acme.example.com/*", "www.example.com/*"], "custom_domains": ["edge.acme.example.com"]}, 2),
    ],
)
def test_a_routing_entry_on_another_tenants_host_is_refused(
    tmp_path: Path, intruder: dict[str, Any], claims: int
) -> None:
    # A dispatch tenant has no WorkersRoute or WorkersCustomDomain: its claims on hostnames are its
    # routing entries (`host:<hostname>` in the platform's routing KV), which the rule must read.
    project = copy_examples(REPO_ROOT, tmp_path / "p", write_passphrase_file(tmp_path / "pp"), "dispatch")
    evil = {"id": "evil", "zone": {"id": "e" * 32, "name": "example.com"}, "routes": [], **intruder}
    (project.root / "Pulumi.prod.evil.yaml").write_text(yaml.safe_dump({"config": {"clawdbot:tenant": evil}}))
    results = {r.stack: r for r in check_stacks(project.root, ["prod.acme", "prod.evil"])}
    found = [v for v in results["prod.evil"].violations if v.policy == "hostname-ownership"]
    # The zone nests with acme's (one violation), then one per routing entry reaching acme's hosts.
    assert len(found) == 1 + claims, [v.message for v in found]
    assert all("tenant acme" in v.message for v in found)
