"""The in-process runner behaves like the analyzer (wire format, unknowns, config, enforcement)
and `python -m orchestrator policy check` reports and exits as CI needs."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.core.contract import REPO_ROOT
from orchestrator.offline.analyzer import ResourceLike, StaticResource, analyzer_props, evaluate, policy_resources
from orchestrator.offline.errors import PolicyRunError
from orchestrator.offline.policy_pack import load_pack, parse_policy_config, reconcile_config
from orchestrator.offline.policy_runner import check_stack, check_stacks
from orchestrator.offline.session import UNKNOWN

KV = "cloudflare:index/workersKvNamespace:WorkersKvNamespace"
KV_ENTRY = "cloudflare:index/workersKv:WorkersKv"
D1 = "cloudflare:index/d1Database:D1Database"
ACME = {"tenantId": "acme", "zoneId": "a" * 32, "zoneName": "acme.example.com", "environment": "prod", "fleet": {}}


def res(stack: str, type_: str, name: str, inputs: dict[str, object], **kw: object) -> StaticResource:
    urn = f"urn:pulumi:{stack}::clawdbot::clawdbot:edge:TenantEdge${type_}::{name}"
    return StaticResource(type=type_, name=name, urn=urn, parent_urn=None, inputs=inputs, **kw)  # type: ignore[arg-type]


def test_props_cross_the_wire_like_the_engine() -> None:
    resource = res("prod.acme", "random:index/randomBytes:RandomBytes", "acme-relay-key", {"length": 32, "k": [1]})
    props = analyzer_props(resource)
    assert props["length"] == 32.0 and isinstance(props["length"], float)
    assert not isinstance(props["k"], list)  # a read-only proxy, as in the analyzer


def test_unknown_value_skips_only_that_policy_with_an_advisory_note() -> None:
    entry = res("prod.acme", KV_ENTRY, "shared-secret", {"keyName": "secret:STRIPE_KEY", "value": UNKNOWN})
    violations = evaluate([entry], stack="prod.acme", context=ACME)
    by_policy = {v.policy: v for v in violations}
    skipped = by_policy["kv-secrets-encrypted"]
    assert skipped.enforcement == "advisory" and skipped.urn == ""
    assert skipped.message == (
        "can't run policy 'kv-secrets-encrypted' from policy pack 'clawdbot-edge@v0.1.0' during preview: "
        "string value at .value can't be known during preview"
    )
    # The name is known, so the naming rule still ran and reported the stray resource.
    assert by_policy["tenant-resource-naming"].mandatory


def test_enforcement_level_overrides_and_disable() -> None:
    db = [res("prod.acme", D1, "acme-db", {"name": "clawdbot-prod-acme"})]
    [mandatory] = evaluate(db, stack="prod.acme", context=ACME)
    assert (mandatory.policy, mandatory.enforcement) == ("d1-protected", "mandatory")
    advisory = evaluate(
        db, stack="prod.acme", context=ACME, overrides={"d1-protected": {"enforcementLevel": "advisory"}}
    )
    assert [v.enforcement for v in advisory] == ["advisory"]
    assert (
        evaluate(db, stack="prod.acme", context=ACME, overrides={"d1-protected": {"enforcementLevel": "disabled"}})
        == []
    )
    with pytest.raises(PolicyRunError, match="d1-protected: unknown config property 'maxSize'"):
        evaluate(db, stack="prod.acme", context=ACME, overrides={"d1-protected": {"maxSize": 1}})


def test_kv_titles_are_unique_across_the_fleet() -> None:
    fleet = {
        "prod.acme": [res("prod.acme", KV, "acme-kv", {"title": "clawdbot-prod-shared"}, id="1" * 32)],
        "prod.globex": [res("prod.globex", KV, "globex-kv", {"title": "clawdbot-prod-shared"}, id="2" * 32)],
    }

    def runner(project: Path, stack: str, preview: bool) -> Sequence[ResourceLike]:
        return fleet[stack]

    results = {r.stack: r for r in check_stacks(REPO_ROOT, list(fleet), runner=runner)}
    clash = [v for v in results["prod.globex"].violations if v.policy == "kv-titles-unique"]
    assert len(clash) == 1 and "prod.acme" in clash[0].message and clash[0].mandatory
    assert not [v for v in results["prod.acme"].violations if v.policy == "kv-titles-unique"]


def _project(tmp_path: Path, tenant: dict[str, object]) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    tenant.setdefault("compatibility_date", (dt.date.today() - dt.timedelta(days=10)).isoformat())
    document = {"config": {"clawdbot:tenant": tenant}}
    (tmp_path / f"Pulumi.prod.{tenant['id']}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return tmp_path


def _zone(name: str) -> dict[str, str]:
    return {"id": "5" * 32, "name": name}


def test_cli_passes_the_example_tenants() -> None:
    result = CliRunner().invoke(cli, ["policy", "check", "--all"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        f"Policy pack clawdbot-edge@v{load_pack().version} ({len(load_pack().policies)} policies)\n"
    )
    assert "prod.acme: " in result.output and "failed" not in result.output and "[mandatory]" not in result.output


def test_cli_fails_on_a_mandatory_violation(tmp_path: Path) -> None:
    project = _project(tmp_path, {"id": "apex", "zone": _zone("apex.example.com"), "routes": ["apex.example.com/*"]})
    result = CliRunner().invoke(cli, ["policy", "check", "--stack", "prod.apex", "--project-dir", str(project)])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("prod.apex: 1 violation(s), 1 mandatory (")
    assert (
        "    [mandatory]  no-apex-catch-all-route  (urn:pulumi:prod.apex::clawdbot::clawdbot:edge:TenantEdge$"
        "cloudflare:index/workersRoute:WorkersRoute::apex-route-0)  Route apex-route-0: 'apex.example.com/*' "
        "catches every request on the apex of zone apex.example.com; narrow it to a host or path, or set "
        "clawdbot:tenant.allow_apex_catch_all: true."
    ) in lines
    assert lines[-1] == "0 of 1 stack(s) passed; failed: prod.apex"


def test_cli_json_and_advisory_only_exit_zero(tmp_path: Path) -> None:
    project = _project(
        tmp_path, {"id": "oldie", "zone": _zone("oldie.example.com"), "compatibility_date": "2022-01-10"}
    )
    result = CliRunner().invoke(cli, ["policy", "check", "--all", "--json", "--project-dir", str(project)])
    assert result.exit_code == 0, result.output
    [stack] = json.loads(result.output)
    assert stack["stack"] == "prod.oldie" and stack["passed"] is True and stack["error"] is None
    assert [(v["policy"], v["enforcement"]) for v in stack["violations"]] == [("compatibility-date-fresh", "advisory")]


def test_cli_reports_a_stack_it_cannot_evaluate(tmp_path: Path) -> None:
    project = _project(tmp_path, {"id": "broken", "zone": {"id": "nothex", "name": "broken.example.com"}})
    result = CliRunner().invoke(cli, ["policy", "check", "--all", "--project-dir", str(project)])
    assert result.exit_code == 1
    assert "prod.broken: error: stack prod.broken: clawdbot:tenant.zone.id:" in result.output


@pytest.mark.parametrize("args", [[], ["--all", "--stack", "prod.acme"]])
def test_cli_needs_exactly_one_selection(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["policy", "check", *args])
    assert result.exit_code == 2 and "give either --stack S (repeatable) or --all" in result.output


def test_real_preview_skips_rules_on_unknowns_and_still_passes() -> None:
    [result] = check_stacks(REPO_ROOT, ["prod.acme"], preview=True)
    assert result.error is None and not result.failed, [v.line() for v in result.violations]
    skipped = [v for v in result.violations if v.message.startswith("can't run policy")]
    # The relay key is unknown in a preview, so every envelope (and the config MAC) is too.
    assert {v.policy for v in skipped} == {"kv-secrets-encrypted"}
    assert all(v.enforcement == "advisory" and v.urn == "" for v in skipped)


# --- dependencies reach the stack policies ---------------------------------------------------------

SCRIPT = "cloudflare:index/workersScript:WorkersScript"


def test_stack_policies_see_the_dependencies_of_the_real_program() -> None:
    _, resources = check_stack(REPO_ROOT, "prod.acme")
    linked = {r.name: r for r in policy_resources(resources)}
    worker = linked["acme-worker"]
    assert {d.name for d in worker.dependencies} >= {"acme-kv", "acme-db", "acme-config", "acme-relay-key"}
    assert all(d is linked[d.name] for d in worker.dependencies)  # the same objects, as the analyzer links them
    assert [d.name for d in linked["acme-route-0"].dependencies] == ["acme-worker"]


def test_isolation_rule_checks_what_a_worker_depends_on() -> None:
    kv = res("prod.acme", KV, "acme-kv", {"title": "clawdbot-prod-acme"})
    foreign = res("prod.acme", KV, "acme-kv2", {"title": "clawdbot-prod-globex"})
    worker = res(
        "prod.acme", SCRIPT, "acme-worker", {"scriptName": "clawdbot-prod-acme", "bindings": []},
        dependencies=(kv.urn, foreign.urn, "urn:pulumi:prod.acme::clawdbot::x:y:Z::elsewhere"),
    )  # fmt: skip
    found = [v.message for v in evaluate([kv, foreign, worker], stack="prod.acme", context=ACME)
             if v.policy == "tenant-isolation"]  # fmt: skip
    assert found == ["Worker acme-worker depends on clawdbot-prod-globex, which is not tenant acme's."]


# --- --policy-config -----------------------------------------------------------------------------


def test_policy_config_sets_allowed_names_for_policy_check(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {"id": "demo", "zone": _zone("demo.example.com"), "routes": ["shop.demo.example.com/*"],
         "config": {"greeting": "hi", "session_token": "public-demo"}},
    )  # fmt: skip
    args = ["policy", "check", "--all", "--project-dir", str(project)]
    flagged = CliRunner().invoke(cli, args)
    assert flagged.exit_code == 1
    assert "kv-secrets-encrypted" in flagged.output and "session_token is named like a secret" in flagged.output
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"kv-secrets-encrypted": {"allowedNames": ["session_token"]}}))
    allowed = CliRunner().invoke(cli, [*args, "--policy-config", str(config)])
    assert allowed.exit_code == 0, allowed.output
    config.write_text(json.dumps({"kv-secrets-encrypted": "advisory"}))
    advisory = CliRunner().invoke(cli, [*args, "--policy-config", str(config)])
    assert advisory.exit_code == 0 and "[advisory]  kv-secrets-encrypted" in advisory.output


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"no-such-policy": "advisory"}, "no policy 'no-such-policy' in pack clawdbot-edge"),
        (
            {"kv-secrets-encrypted": {"allowedName": ["x"]}},
            "kv-secrets-encrypted: unknown config property 'allowedName'",
        ),
        ({"d1-protected": {"maxSize": 1}}, "d1-protected: unknown config property 'maxSize' (it takes none)"),
        (
            {"kv-secrets-encrypted": {"allowedNames": "x"}},
            "kv-secrets-encrypted: allowedNames: 'x' is not of type 'array'",
        ),
        (
            {"kv-secrets-encrypted": {"allowedNames": [1]}},
            "kv-secrets-encrypted: allowedNames[0]: 1 is not of type 'string'",
        ),
        (
            {"no-plaintext-secret-bindings": {"secretWords": ["ok", None]}},
            "secretWords[1]: None is not of type 'string'",
        ),
        # Schema bounds, as the engine's gojsonschema check (pkg/resource/analyzer/config.go).
        (
            {"compatibility-date-fresh": {"maxAgeDays": -5}},
            "compatibility-date-fresh: maxAgeDays: -5 is less than the minimum of 1",
        ),
        (
            {"compatibility-date-fresh": {"maxAgeDays": 0}},
            "compatibility-date-fresh: maxAgeDays: 0 is less than the minimum of 1",
        ),
        (
            {"compatibility-date-fresh": {"maxAgeDays": "30"}},
            "compatibility-date-fresh: maxAgeDays: '30' is not of type 'integer'",
        ),
        (
            {"compatibility-date-fresh": {"maxAgeDays": True}},
            "compatibility-date-fresh: maxAgeDays: True is not of type 'integer'",
        ),
        (
            {"cron-schedules-limit": {"maxSchedules": 2.5}},
            "cron-schedules-limit: maxSchedules: 2.5 is not of type 'integer'",
        ),
        (
            {"cron-schedules-limit": {"maxSchedules": -1}},
            "cron-schedules-limit: maxSchedules: -1 is less than the minimum of 0",
        ),
        (
            {"script-size-limit": {"maxCompressedBytes": 0}},
            "script-size-limit: maxCompressedBytes: 0 is less than the minimum of 1",
        ),
        ({"hostname-ownership": {"fleet": []}}, "hostname-ownership: fleet: [] is not of type 'object'"),
        (
            {"hostname-ownership": {"fleet": {"acme": {"routes": []}}}},
            "hostname-ownership: fleet.acme: 'zoneName' is a required property",
        ),
        (
            {"hostname-ownership": {"fleet": {"acme": {"zoneName": "a.example", "routes": "x/*"}}}},
            "fleet.acme.routes: 'x/*' is not of type 'array'",
        ),
        ({"tenant-isolation": {"tenantId": 7}}, "tenant-isolation: tenantId: 7 is not of type 'string'"),
        ({"kv-secrets-encrypted": "sometimes"}, "enforcementLevel 'sometimes' is not one of"),
        (["kv-secrets-encrypted"], "expected a JSON object"),
    ],
)
def test_policy_config_is_checked_before_anything_runs(document: object, message: str) -> None:
    with pytest.raises(PolicyRunError) as caught:
        parse_policy_config(document, load_pack(), "policy config cfg.json")
    line = str(caught.value)
    assert line.startswith("policy config cfg.json: ") and message in line and "\n" not in line, line


def test_every_policy_default_passes_its_own_schema() -> None:
    for policy in load_pack().policies:
        reconcile_config(policy, {}, {})  # raises when a default breaks its schema


def test_a_config_with_several_faults_names_the_first_and_counts_the_rest() -> None:
    document = {"kv-secrets-encrypted": {"allowedNames": [1, 2, 3]}}
    with pytest.raises(PolicyRunError, match=r"allowedNames\[0\]: 1 is not of type 'string' \(and 2 more\)$"):
        parse_policy_config(document, load_pack())


def test_cli_refuses_an_out_of_range_policy_config_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"compatibility-date-fresh": {"maxAgeDays": -5}}))
    result = CliRunner().invoke(cli, ["policy", "check", "--stack", "prod.acme", "--policy-config", str(config)])
    assert result.exit_code == 2
    assert f"policy config {config}: compatibility-date-fresh: maxAgeDays: -5 is less than the minimum of 1" in (
        result.output
    )
    assert "prod.acme: ok" not in result.output


def test_policy_config_all_sets_every_level_unless_a_policy_has_its_own() -> None:
    overrides = parse_policy_config({"all": "advisory", "relay-key-binding": "mandatory"}, load_pack())
    assert overrides["relay-key-binding"] == {"enforcementLevel": "mandatory"}
    assert overrides["kv-secrets-encrypted"] == {"enforcementLevel": "advisory"}
    assert len(overrides) == len(load_pack().policies)


def test_cli_rejects_a_bad_policy_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text("{not json")
    result = CliRunner().invoke(cli, ["policy", "check", "--all", "--policy-config", str(config)])
    assert result.exit_code == 2 and f"policy config {config}: not JSON" in result.output
