"""Offboarding in dispatch mode: the sweep by tag, as `tenants sweep` and after `destroy`, against the
loopback Workers-for-Platforms stand-in (tests/fake_wfp.py) and through the real throttling proxy.

Upstream facts relied on: Cloudflare lists and deletes namespace scripts by tag with
`GET|DELETE /accounts/{account}/workers/dispatch/namespaces/{ns}/scripts?tags=<tag>:yes`
(cf-docs src/content/docs/cloudflare-for-platforms/workers-for-platforms/configuration/tags.mdx;
the cloudflare-python 5.9 SDK has no wrapper for it, reference/scale.md §1.3), pinned with the rest
of the WfP API in tests/test_namespaced_script.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from fake_wfp import FakeWfp, Script, serve_fake_wfp
from tenant_fixtures import tenant
from test_fleet_versions import _checkpoint
from test_program_dispatch import dispatch_project

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.config.settings import Settings
from orchestrator.config.tenant_config import load_platform_spec, validate_tenant
from orchestrator.core.dispatch import script_tags
from orchestrator.core.errors import ConfigError, EdgeError, FleetLockError
from orchestrator.core.health import GateResult
from orchestrator.engine.locks import fleet_lease
from orchestrator.fleet.audit import AuditLog, read_events
from orchestrator.fleet.changes import Rendered
from orchestrator.fleet.report import FleetReport, Result, TenantResult
from orchestrator.ops.offboard import TENANT_TAG_PREFIX, sweep, sweep_destroyed, sweep_tag, sweepable_tenant
from orchestrator.testing.simulated import SimulatedExecutor

ACCOUNT = "0123456789abcdef0123456789abcdef"  # Pulumi.prod.yaml's account_id
NAMESPACE = "clawdbot-prod"
TOKEN = "wfp-sweep-token-1b2c3d"


def ok_gate(targets: Any) -> GateResult:
    return GateResult(())


class World:
    def __init__(self, tmp_path: Path, fake: FakeWfp) -> None:
        root = tmp_path / "project"
        root.mkdir()
        dispatch_project(root)
        for spec in (tenant(), tenant(id="beta", zone={"id": "1" * 32, "name": "beta.example.com"}, routes=[],
                                      custom_domains=[], isolation="workers")):  # fmt: skip
            spec["secret_names"] = []
            text = yaml.safe_dump({"config": {"clawdbot:tenant": spec}})
            (root / f"Pulumi.prod.{spec['id']}.yaml").write_text(text)
        passphrase = tmp_path / "passphrase"
        passphrase.write_text("pass phrase")
        passphrase.chmod(0o600)
        self.settings = Settings(
            project_dir=root,
            state_dir=tmp_path / "state",
            work_root=tmp_path / "work",
            passphrase_file=passphrase,
            audit_log=tmp_path / "audit.jsonl",
            pulumi_root=tmp_path / "no-pulumi-here",
        )
        self.fake = fake
        self.audit = AuditLog(self.settings.audit_log, who="test@host")

    def upload(self, name: str, *tags: str) -> None:
        self.fake.scripts[(NAMESPACE, name)] = Script({}, {"tags": list(tags)})

    def names(self) -> list[str]:
        return sorted(name for ns, name in self.fake.scripts if ns == NAMESPACE)

    def invoke(self, *args: str) -> Any:
        deps = FleetDeps(
            executor=lambda settings, url: SimulatedExecutor(),
            gate=ok_gate,
            render=lambda p: lambda s: Rendered(f"sim-{s}", 1),
            settings=lambda: self.settings,
        )
        return CliRunner().invoke(cli, list(args), obj=deps)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with serve_fake_wfp(TOKEN, ACCOUNT, {NAMESPACE}) as (fake, base_url):
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", base_url)
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
        w = World(tmp_path, fake)
        w.upload("clawdbot-prod-acme-old", "tenant-acme", "plan-standard", "env-prod", "fleet-clawdbot-prod")
        w.upload("clawdbot-prod-acme-2", "tenant-acme")
        w.upload("clawdbot-prod-gamma", "tenant-gamma", "plan-standard", "env-prod", "fleet-clawdbot-prod")
        yield w


def test_the_tag_is_the_first_of_the_tags_every_user_worker_carries(tmp_path: Path) -> None:
    platform = load_platform_spec(dispatch_project(tmp_path))
    spec = validate_tenant("prod.acme", tenant(secret_names=[]), [])
    assert script_tags(spec, platform)[0] == f"{TENANT_TAG_PREFIX}acme"


@pytest.mark.parametrize(
    "tag",
    ["plan-standard", "env-prod", "fleet-clawdbot-prod", "tenant-", "tenant-Acme", "tenant-a", "tenant-acme,x",
     "tenant-acme:yes", "tenant-acme&tags=plan-free", "tenant-../x", "tenant-acme\n", "", "acme"],
)  # fmt: skip
def test_only_a_tenant_tag_is_sweepable(tag: str) -> None:
    assert sweepable_tenant(tag) is None


def test_dry_run_lists_names_and_deletes_nothing(world: World) -> None:
    result = world.invoke("tenants", "sweep", "--tag", "tenant-acme", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "tag": "tenant-acme",
        "namespace": NAMESPACE,
        "dry_run": True,
        "scripts": ["clawdbot-prod-acme-2", "clawdbot-prod-acme-old"],
        "deleted": [],
    }
    assert len(world.names()) == 3 and not any(r["method"] == "DELETE" for r in world.fake.requests)
    (event,) = [e for e in read_events(world.settings.audit_log) if e.operation == "sweep"]
    assert event.result == "dry-run" and event.tenant == "acme" and "clawdbot-prod-acme-old" in (event.detail or "")


def test_sweep_deletes_only_that_tenants_scripts_through_the_proxy(world: World) -> None:
    # Two 429s: without the throttling proxy's retries, the first call would fail.
    world.fake.rate_limit_next = 2
    result = world.invoke("tenants", "sweep", "--tag", "tenant-acme", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f"deleted 2 scripts tagged tenant-acme in namespace {NAMESPACE}: clawdbot-prod-acme-2, clawdbot-prod-acme-old"
    )
    assert world.names() == ["clawdbot-prod-gamma"]
    by_tag = [r for r in world.fake.requests if r["query"].get("tags")]
    assert {r["query"]["tags"][0] for r in by_tag} == {"tenant-acme:yes"}
    assert [r["method"] for r in by_tag][-2:] == ["DELETE", "GET"]  # deleted, then checked
    assert TOKEN not in result.output and TOKEN not in world.settings.audit_log.read_text()


def test_nothing_to_sweep_is_said_plainly(world: World) -> None:
    result = world.invoke("tenants", "sweep", "--tag", "tenant-nobody", "--yes")
    assert result.exit_code == 0 and result.output.strip() == f"no script tagged tenant-nobody in namespace {NAMESPACE}"
    assert not any(r["method"] == "DELETE" for r in world.fake.requests)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tag", "plan-standard", "--yes"), "only a tenant's own tag (tenant-<id>) can be swept"),
        (("--tag", "tenant-acme"), "look first with --dry-run, then add --yes"),
        ((), "Missing option '--tag'"),
    ],
)
def test_usage_errors_ask_nothing_of_cloudflare(world: World, args: tuple[str, ...], message: str) -> None:
    result = world.invoke("tenants", "sweep", *args)
    assert result.exit_code == 2 and message in result.output
    assert world.fake.requests == [] and len(world.names()) == 3


def test_a_tenant_whose_stack_still_holds_resources_is_not_swept(world: World) -> None:
    path = world.settings.state_dir / ".pulumi" / "stacks" / "clawdbot" / "prod.acme.json"
    _checkpoint(world.settings.state_dir, "prod.acme", {"config_version": 2})
    document = json.loads(path.read_text())
    document["checkpoint"]["latest"]["resources"].append(
        {"urn": "urn:pulumi:prod.acme::clawdbot::pulumi-python:dynamic:Resource::acme-script", "custom": True,
         "type": "pulumi-python:dynamic:Resource"}
    )  # fmt: skip
    path.write_text(json.dumps(document))
    result = world.invoke("tenants", "sweep", "--tag", "tenant-acme", "--yes")
    assert result.exit_code == 1
    assert "stack prod.acme still holds 1 resources" in result.output and "destroy --tenant acme --yes" in result.output
    assert world.fake.requests == []


def test_an_api_refusal_is_one_line_naming_the_tenant_and_audited(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-" + TOKEN)
    result = world.invoke("tenants", "sweep", "--tag", "tenant-acme", "--yes")
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith("Error: tenant acme: listing scripts tagged tenant-acme in namespace clawdbot-prod")
    assert "refused the API token" in line and TOKEN not in result.output
    assert [e.result for e in read_events(world.settings.audit_log) if e.operation == "sweep"] == ["failed"]
    assert len(world.names()) == 3


def test_the_sweep_waits_for_no_one_it_refuses_while_a_fleet_run_holds_the_lease(world: World) -> None:
    lease = fleet_lease(world.settings.fleet_lease_file, holder="someone else", command="up --all")
    with lease, pytest.raises(FleetLockError):
        sweep_tag(world.settings, "tenant-acme", dry_run=False, holder="me", audit=world.audit)
    assert len(world.names()) == 3


def test_the_library_refuses_a_shared_tag_too(world: World) -> None:
    with pytest.raises(ConfigError, match="only a tenant's own tag"):
        sweep_tag(world.settings, "fleet-clawdbot-prod", dry_run=False, holder="me", audit=world.audit)


@pytest.mark.parametrize("before", [None, "http://127.0.0.1:9/not-this-one"])
@pytest.mark.parametrize("fails", [False, True])
def test_a_sweep_leaves_the_process_environment_alone(
    world: World, monkeypatch: pytest.MonkeyPatch, before: str | None, fails: bool
) -> None:
    # The URL is the sweep's own: the environment is every thread's, a fleet run's engines too.
    url = os.environ["CLOUDFLARE_BASE_URL"]  # the fake's, as the world set it
    if before is None:
        monkeypatch.delenv("CLOUDFLARE_BASE_URL")
    else:
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", before)
    if fails:
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-" + TOKEN)
    environment = dict(os.environ)
    if fails:
        with pytest.raises(EdgeError, match="refused the API token"):
            sweep(world.settings, "acme", dry_run=False, base_url=url)
    else:
        assert sweep(world.settings, "acme", dry_run=False, base_url=url).scripts
        assert world.names() == ["clawdbot-prod-gamma"]
    assert world.fake.requests, "the sweep reached the URL it was given, whatever the environment says"
    assert {r["env_base_url"] for r in world.fake.requests} == {before}, "nor was it changed meanwhile"
    assert dict(os.environ) == environment


# --- after destroy ----------------------------------------------------------------------------------


def destroyed(*stacks: str) -> FleetReport:
    return FleetReport(
        "destroy", tuple(TenantResult(s, "destroy", Result.OK, detail="kept protected x") for s in stacks)
    )


def test_destroy_of_a_dispatch_tenant_sweeps_its_tag_and_says_what(world: World) -> None:
    report = sweep_destroyed(world.settings, destroyed("prod.acme", "prod.beta"), None, world.audit)
    acme, beta = report.results
    assert acme.result is Result.OK and acme.detail.startswith("kept protected x; swept: deleted 2 scripts")
    assert beta.detail == "kept protected x"  # workers mode (pinned): nothing asked of the namespace
    assert world.names() == ["clawdbot-prod-gamma"]
    assert {r["query"]["tags"][0] for r in world.fake.requests} == {"tenant-acme:yes"}


def test_a_failed_sweep_after_destroy_fails_the_tenant_with_the_command_to_finish(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    (acme,) = sweep_destroyed(world.settings, destroyed("prod.acme"), None, world.audit).results
    assert acme.result is Result.FAILED and "destroyed, but the sweep by tag failed" in acme.detail
    assert acme.advice[-1] == "then run `python -m orchestrator tenants sweep --tag tenant-acme`"


def test_other_operations_and_failed_destroys_are_left_alone(world: World) -> None:
    failed = FleetReport("destroy", (TenantResult("prod.acme", "destroy", Result.FAILED, detail="boom"),))
    assert sweep_destroyed(world.settings, failed, None, world.audit) == failed
    up = FleetReport("up", (TenantResult("prod.acme", "up", Result.OK),))
    assert sweep_destroyed(world.settings, up, None, world.audit) == up
    assert world.fake.requests == []


def test_the_fleet_destroy_command_sweeps_through_its_own_proxy(world: World) -> None:
    world.fake.rate_limit_next = 1
    result = world.invoke("destroy", "--tenant", "acme", "--yes", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["tenants"]
    assert "swept: deleted 2 scripts tagged tenant-acme" in row["detail"]
    assert world.names() == ["clawdbot-prod-gamma"]


def test_a_dispatch_tenant_destroyed_without_leftovers_reports_nothing_extra(world: World) -> None:
    del world.fake.scripts[(NAMESPACE, "clawdbot-prod-acme-old")]
    del world.fake.scripts[(NAMESPACE, "clawdbot-prod-acme-2")]
    (acme,) = sweep_destroyed(world.settings, destroyed("prod.acme"), None, world.audit).results
    assert acme.detail == "kept protected x" and acme.result is Result.OK
