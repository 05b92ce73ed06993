"""A hostname belongs to one tenant across the fleet: `plan`, `policy check`, `tenants add` and the
local edge all refuse a tenant that reaches acme's hosts, naming acme, in one line.

Each intruder below passes TenantSpec on its own (its routes lie inside the zone it declares);
only the fleet-wide rule (core.hostnames, the pack's own) can see that the zone or a host is
acme's. The pure rule's finer cases (case, trailing dot, IDN, wildcards both ways) are in
tests/test_hostnames.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.config.ownership import OWNERSHIP_POLICY, fleet_policy_config, registry_hosts
from orchestrator.config.settings import Settings
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import ConfigError
from orchestrator.core.pack import pack_module
from orchestrator.local_edge.deploy import load_bundles
from orchestrator.offline.policy_runner import check_stacks

ACME_ZONE_ID = "3f1c9d2e8b7a6c5d4e3f2a1b0c9d8e7f"
"""Pulumi.prod.acme.yaml: zone acme.example.com, routes shop.acme.example.com/* and
api.acme.example.com/v1/*, custom domain edge.acme.example.com."""
OTHER_ID = "e" * 32


def _zone(name: str, zone_id: str = OTHER_ID) -> dict[str, str]:
    return {"id": zone_id, "name": name}


INTRUDERS: dict[str, tuple[dict[str, Any], int]] = {
    # name: (evil's tenant config, how many of its routes and domains reach acme's hosts)
    "acme's exact route": ({"zone": _zone("acme.example.com"), "routes": ["shop.acme.example.com/*"]}, 1),
    "a more specific path": ({"zone": _zone("example.com"), "routes": ["shop.acme.example.com/webhooks"]}, 1),
    "the health path": ({"zone": _zone("example.com"), "routes": ["shop.acme.example.com/_edge/health"]}, 1),
    "acme's custom domain": ({"zone": _zone("example.com"), "custom_domains": ["edge.acme.example.com"]}, 1),
    "a custom domain on acme's route host": (
        {"zone": _zone("acme.example.com"), "custom_domains": ["shop.acme.example.com"]},
        1,
    ),
    "a wildcard covering acme": ({"zone": _zone("example.com"), "routes": ["*example.com/*", "www.example.com/*"]}, 1),
    "a sub-zone on acme's host": ({"zone": _zone("shop.acme.example.com"), "routes": ["shop.acme.example.com/*"]}, 1),
    "acme's zone id": ({"zone": _zone("evil.example.com", ACME_ZONE_ID), "routes": ["evil.example.com/*"]}, 0),
}
"""Each passes TenantSpec, so its routes lie in the zone it declares: that zone is acme's or nests with
it, and the zone is the first entry refused; the routes and domains are counted in `(and N more)`."""


def _project(tmp_path: Path, evil: dict[str, Any] | None) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.prod.acme.yaml", "Pulumi.prod.globex.yaml"):
        shutil.copy(REPO_ROOT / name, project / name)
    if evil is not None:
        _write_tenant(project, {"id": "evil", **evil})
    return project


def _write_tenant(project: Path, tenant: dict[str, Any]) -> None:
    document = {"config": {"clawdbot:tenant": tenant}}
    (project / f"Pulumi.prod.{tenant['id']}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")


def _plan(project: Path, stack: str) -> Any:
    return CliRunner().invoke(cli, ["plan", "--config", str(project / f"Pulumi.{stack}.yaml")])


@pytest.mark.parametrize("name", sorted(INTRUDERS))
def test_plan_refuses_the_intruder_in_one_line_naming_acme(tmp_path: Path, name: str) -> None:
    evil, reaching = INTRUDERS[name]
    project = _project(tmp_path, evil)
    result = _plan(project, "prod.evil")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: stack prod.evil: clawdbot:tenant.zone: "), lines
    assert "tenant acme" in lines[0]
    assert lines[0].endswith(f" (and {reaching} more)") if reaching else "(and" not in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", sorted(INTRUDERS))
def test_policy_check_refuses_the_intruder(tmp_path: Path, name: str) -> None:
    project = _project(tmp_path, INTRUDERS[name][0])
    results = {r.stack: r for r in check_stacks(project, ["prod.acme", "prod.evil"])}
    evil = results["prod.evil"]
    assert evil.error is None, evil.error
    found = [v for v in evil.violations if v.policy == OWNERSHIP_POLICY]
    assert len(found) == 1 + INTRUDERS[name][1] and all(v.mandatory for v in found) and evil.failed
    assert all("tenant acme" in v.message for v in found), [v.message for v in found]


@pytest.mark.parametrize("name", sorted(INTRUDERS))
def test_the_local_edge_refuses_to_serve_the_intruder(tmp_path: Path, name: str) -> None:
    project = _project(tmp_path, INTRUDERS[name][0])
    with pytest.raises(ConfigError, match=r"^stack prod\.evil: clawdbot:tenant\.zone: .*tenant acme"):
        load_bundles(project, ["prod.evil"])
    # Serving both, whichever is looked at first is refused: one runtime cannot route for two owners.
    with pytest.raises(ConfigError, match=r"^stack prod\.(acme|evil): clawdbot:tenant\.zone: .*tenant (evil|acme)"):
        load_bundles(project, ["prod.acme", "prod.evil"])
    assert len(load_bundles(project, ["prod.globex"])) == 1


def _add(project: Path, tmp_path: Path, *args: str) -> Any:
    settings = Settings(
        project_dir=project,
        state_dir=tmp_path / "state",
        work_root=tmp_path / "work",
        passphrase_file=tmp_path / "passphrase",
        audit_log=tmp_path / "audit.jsonl",
        pulumi_root=tmp_path / "no-pulumi-here",
    )
    return CliRunner().invoke(cli, ["tenants", "add", "evil", *args], obj=FleetDeps(settings=lambda: settings))


@pytest.mark.parametrize(
    "args",
    [
        ["--zone-id", OTHER_ID, "--zone-name", "acme.example.com"],
        ["--zone-id", ACME_ZONE_ID, "--zone-name", "evil.example.com"],
        ["--zone-id", OTHER_ID, "--zone-name", "example.com", "--route", "shop.acme.example.com/webhooks"],
        ["--zone-id", OTHER_ID, "--zone-name", "acme.example.com", "--custom-domain", "edge.acme.example.com"],
        ["--zone-id", OTHER_ID, "--zone-name", "api.acme.example.com", "--route", "api.acme.example.com/v2/*"],
    ],
)
def test_tenants_add_refuses_and_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    project = _project(tmp_path, None)
    result = _add(project, tmp_path, *args)
    assert result.exit_code == 1, result.output
    assert "stack prod.evil: clawdbot:tenant.zone: " in result.output and "tenant acme" in result.output
    assert not (project / "Pulumi.prod.evil.yaml").exists()


def test_a_disjoint_tenant_is_added_planned_checked_and_served(tmp_path: Path) -> None:
    project = _project(tmp_path, None)
    args = ["--zone-id", OTHER_ID, "--zone-name", "evil.example.com", "--route", "shop.evil.example.com/*"]
    result = _add(project, tmp_path, *args, "--custom-domain", "edge.evil.example.com")
    assert result.exit_code == 0, result.output
    assert _plan(project, "prod.evil").exit_code == 0
    stacks = ["prod.acme", "prod.evil", "prod.globex"]
    results = check_stacks(project, stacks)
    assert [(r.stack, r.failed) for r in results] == [(s, False) for s in stacks], [r.violations for r in results]
    assert [spec.id for spec, _ in load_bundles(project, stacks)] == ["acme", "evil", "globex"]


def test_an_existing_tenant_fails_closed_when_an_intruder_shares_its_zone(tmp_path: Path) -> None:
    # The file arrived by hand, bypassing `tenants add`: neither can own the zone until one goes.
    project = _project(tmp_path, {"zone": _zone("acme.example.com"), "routes": ["shop.acme.example.com/webhooks"]})
    result = _plan(project, "prod.acme")
    assert result.exit_code == 1
    assert result.output.startswith("Error: stack prod.acme: clawdbot:tenant.zone: zone acme.example.com is also ")
    assert "tenant evil" in result.output


def test_a_broken_registry_file_keeps_its_hostnames(tmp_path: Path) -> None:
    # Not a valid tenant (no crons list, unknown field), but its zone is still claimed.
    project = _project(tmp_path, {"zone": _zone("evil.example.com"), "routes": ["x.evil.example.com/*"], "bad": 1})
    _write_tenant(project, {"id": "late", "zone": _zone("evil.example.com", "f" * 32)})
    result = _plan(project, "prod.late")
    assert result.exit_code == 1 and "zone evil.example.com is also declared by tenant evil" in result.output
    assert {t.tenant for t in registry_hosts(project)} == {"acme", "evil", "globex", "late"}


def test_fleet_config_is_what_the_pack_reads() -> None:
    ownership = pack_module("rules.ownership")
    assert ownership.hostname_ownership.name == OWNERSHIP_POLICY
    config = fleet_policy_config(REPO_ROOT)
    assert set(config) == {OWNERSHIP_POLICY} and set(config[OWNERSHIP_POLICY]) == {ownership.FLEET_KEY}
    assert set(config[OWNERSHIP_POLICY][ownership.FLEET_KEY]) == {"acme", "globex"}
    result = CliRunner().invoke(cli, ["policy", "fleet-config", "--project-dir", str(REPO_ROOT)])
    assert result.exit_code == 0 and yaml.safe_load(result.output) == config
