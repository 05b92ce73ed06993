"""`up` refuses other content under a config_version already deployed, before any stack runs.

The Worker refuses a KV document at the version it holds whose payload differs (`version_conflict`,
worker_src/src/config.js; docs/contract.md, "Signed config document") and the tenant is degraded;
the fleet refuses such a stack file before deploying it, deciding "differs" as the Worker does
(`orchestrator.core.config_match`, cross-checked against the Worker's `sameJson` in
tests/test_config_match.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tenant_fixtures import tenant
from test_cli_fleet import Env
from test_fleet import UP, World
from test_fleet_versions import _checkpoint

from orchestrator.config.settings import Settings
from orchestrator.core import outputs
from orchestrator.core.config_match import payload_text_identity
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.crypto import config_payload_text
from orchestrator.core.names import tenant_of
from orchestrator.engine.records import FileDeployedStore
from orchestrator.fleet.local_steps import version_refusal
from orchestrator.fleet.ports import DeployedRecord, VersionFacts
from orchestrator.fleet.report import Result, RolloutOptions
from orchestrator.offline.session import run_offline
from orchestrator.ops.fleet_run import deployed_config_versions

OLD, NEW = "old-identity", "new-identity"


def _identity(config: dict[str, Any], version: int = 4, tenant_id: str = "acme") -> str:
    return payload_text_identity(config_payload_text(tenant_id, version, config))


@pytest.mark.parametrize(
    ("facts", "refused"),
    [
        (VersionFacts(4, 4, NEW, ((4, OLD),)), True),
        (VersionFacts(4, 5, NEW, ((5, "x"), (4, OLD))), True),  # a record of v4 under a newer state
        (VersionFacts(4, 4, NEW, ((4, NEW),)), False),  # the same content: a redeploy, not a change
        (VersionFacts(5, 4, NEW, ((4, OLD),)), False),  # a bump: the change the Worker adopts
        (VersionFacts(4, 4, None, ((4, OLD),)), False),  # a file the program refuses anyway
        (VersionFacts(4, 4, NEW, ()), False),  # deployed before stacks exported their identity
        (VersionFacts(None, 4, NEW, ((4, OLD),)), False),
    ],
)
def test_other_content_under_a_deployed_version_is_refused(facts: VersionFacts, refused: bool) -> None:
    why = version_refusal("prod.acme", facts)
    assert (why is not None) is refused
    if why is not None:
        for part in ("tenant acme", "Pulumi.prod.acme.yaml", "clawdbot:tenant.config ", "config_version 4"):
            assert part in why
        assert "version_conflict" in why and f"above {max(facts.wanted or 0, facts.deployed or 0)}" in why


def test_the_rollback_flag_does_not_let_a_conflict_through() -> None:
    # --allow-config-rollback deploys an older version; other content under a held one helps nobody.
    facts = VersionFacts(4, 4, NEW, ((4, OLD),))
    assert version_refusal("prod.acme", facts, allow_rollback=True) is not None
    assert version_refusal("prod.acme", VersionFacts(3, 4, NEW, ((4, OLD),)), allow_rollback=True) is None


def test_the_fleet_refuses_it_before_any_stack_runs(tmp_path: Path) -> None:
    world = World(tmp_path)
    fleet = world.fleet()
    fleet.versions = lambda stack: VersionFacts(4, 4, NEW, ((4, OLD),) if stack == "prod.t03" else ())
    options = RolloutOptions(UP.operation, concurrency=3, wave_size=3, retry_delay_s=0, allow_config_rollback=True)
    report = fleet.run(world.stacks, options)
    result = next(r for r in report.results if r.stack == "prod.t03")
    assert result.result is Result.FAILED and "version_conflict" in result.detail
    assert world.ran() == [] and report.halted


def _tenant_file(env: Env, config: dict[str, Any], version: int = 4) -> None:
    spec = tenant(config_version=version, config=config, secret_names=[])
    path = env.settings.project_dir / "Pulumi.prod.acme.yaml"
    path.write_text(json.dumps({"config": {"clawdbot:tenant": spec}}))


@pytest.mark.parametrize(
    ("deployed", "wanted", "refused"),
    [
        ({"greeting": "Hello"}, {"greeting": "Hello!"}, True),
        ({"flag": 1}, {"flag": True}, True),  # Python's == holds these equal; the Worker does not
        ({"n": 1}, {"n": 1.0}, False),  # one double to the Worker: the same content
        ({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, False),
    ],
)
def test_up_through_the_cli(tmp_path: Path, deployed: dict[str, Any], wanted: dict[str, Any], refused: bool) -> None:
    env = Env(tmp_path)
    _tenant_file(env, wanted)
    _checkpoint(
        env.settings.state_dir,
        "prod.acme",
        {outputs.CONFIG_VERSION: 4, outputs.CONFIG_IDENTITY: _identity(deployed)},
    )
    result = env.invoke("up", "--tenant", "acme", "--json")
    ran = [tenant_of(stack) for stack, op in env.sim.calls if op == "up"]
    if not refused:
        assert result.exit_code == 0, result.output
        assert ran == ["acme"]
        return
    assert result.exit_code == 1
    detail = json.loads(result.output)["tenants"][0]["detail"]
    assert "version_conflict" in detail and "Pulumi.prod.acme.yaml" in detail and ran == []
    _tenant_file(env, wanted, version=5)
    assert env.invoke("up", "--tenant", "acme", "--json").exit_code == 0


def _record(stack: str, version: int, identity: str | None) -> DeployedRecord:
    return DeployedRecord(
        stack=stack,
        bundle_hash="b",
        config_version=version,
        config_identity=identity,
        health_url=None,
        config_digest="c",
        program_digest="p",
        render_digest="r",
        state_fingerprint=None,
        updated_at=datetime.now(UTC),
    )


def test_the_port_reads_identities_from_the_state_and_the_records(tmp_path: Path) -> None:
    env = Env(tmp_path)
    _tenant_file(env, {"greeting": "Hello!"})
    store = FileDeployedStore(env.settings, "clawdbot")
    store.put(_record("prod.acme", 4, _identity({"greeting": "Hello"})))
    _checkpoint(env.settings.state_dir, "prod.acme", {outputs.CONFIG_VERSION: 3})  # older, no identity
    facts = deployed_config_versions(env.settings, "clawdbot", store)("prod.acme")
    assert facts.wanted == 4 and facts.deployed == 4
    assert facts.wanted_identity == _identity({"greeting": "Hello!"})
    assert facts.deployed_identities == ((4, _identity({"greeting": "Hello"})),)
    assert version_refusal("prod.acme", facts) is not None


def test_a_record_without_an_identity_reads_as_unknown(tmp_path: Path) -> None:
    env = Env(tmp_path)
    store = FileDeployedStore(env.settings, "clawdbot")
    written = store.put(_record("prod.acme", 4, None))
    legacy = json.loads(written.model_dump_json())
    del legacy["config_identity"]  # a record written before the field existed
    store.paths("prod.acme").record_file.write_text(json.dumps(legacy))
    record = store.get("prod.acme")
    assert record is not None and record.config_identity is None and record.config_version == 4


def test_the_program_exports_the_identity_the_port_computes_from_the_same_file(tmp_path: Path) -> None:
    # One rule: what the deployed stack says it signed is what the guard computes for the file.
    stack = "prod.acme"
    result = run_offline(REPO_ROOT, stack)
    settings = Settings(
        project_dir=REPO_ROOT,
        state_dir=tmp_path / "state",
        work_root=tmp_path / "work",
        passphrase_file=tmp_path / "pp",
        audit_log=tmp_path / "audit.jsonl",
    )
    facts = deployed_config_versions(settings, "clawdbot", FileDeployedStore(settings, "clawdbot"))(stack)
    assert facts.wanted_identity is not None
    assert result.outputs[outputs.CONFIG_IDENTITY] == facts.wanted_identity
    assert outputs.CONFIG_IDENTITY not in result.secret_outputs
