"""Which edits redeploy the fleet (issue 11, item 10), on a copy of this repository's real files.

The program digest covers what shapes the deployed resources: components, the program and the core
modules it imports, the bundle's inputs (Worker source, migrations, contract), Pulumi.yaml and the
platform stack. Editing the CLI, the fleet, the engine adapter, backups or the test-vector generator
must leave every tenant unchanged without even rendering; editing a component must change them all.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.config.tenant_config import tenant_stacks
from orchestrator.core.contract import REPO_ROOT
from orchestrator.fleet.changes import Desired, FleetInputs, Rendered, decide
from orchestrator.fleet.ports import DeployedRecord

UNCHANGED_BY = [
    "orchestrator/cli/fleet.py",
    "orchestrator/cli/secrets.py",
    "orchestrator/fleet/rollout.py",
    "orchestrator/fleet/changes.py",
    "orchestrator/engine/stacks.py",
    "orchestrator/backup/repository.py",
    "orchestrator/testing/vectors.py",
    "orchestrator/ops/demo.py",
]
CHANGED_BY = [
    "components/tenant_edge.py",
    "components/d1_migrations.py",
    "orchestrator/program.py",
    "orchestrator/core/render.py",
    "orchestrator/core/crypto.py",
    "worker_src/src/index.js",
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z"], capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("needs a git checkout to copy the tracked files from")
    dest = tmp_path_factory.mktemp("repo")
    for name in filter(None, listed.stdout.decode().split("\0")):
        if name.endswith((".py", ".js", ".mjs", ".sql", ".json", ".yaml")) and (REPO_ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, dest / name)
    return dest


def _records(repo: Path, inputs: FleetInputs) -> dict[str, DeployedRecord]:
    return {
        stack: DeployedRecord(
            stack=stack,
            bundle_hash=f"bundle-{stack}",
            config_version=1,
            health_url=None,
            config_digest=inputs.desired(repo, stack).config_digest,
            program_digest=inputs.program_digest,
            render_digest=inputs.render_digest,
            state_fingerprint=None,
            updated_at=datetime.now(UTC),
        )
        for stack in tenant_stacks(repo)
    }


def _decisions(repo: Path, records: dict[str, DeployedRecord]) -> dict[str, str]:
    inputs = FleetInputs.compute(repo, repo)
    renders: list[str] = []

    def render_for(stack: str) -> Rendered:
        renders.append(stack)  # a re-render that finds the same bundle: unchanged, but it was needed
        return Rendered(f"bundle-{stack}", 1)

    out = {}
    for stack, record in records.items():
        desired: Desired = inputs.desired(repo, stack)
        render = functools.partial(render_for, stack)
        decision = decide(desired, record, state_changed=lambda _r: False, render=render)
        out[stack] = ("changed: " if decision.changed else "unchanged: ") + decision.reason
    return out | {"(renders)": ",".join(renders)}


@pytest.mark.parametrize("edited", UNCHANGED_BY)
def test_editing_code_that_shapes_no_resource_leaves_every_tenant_unchanged(repo: Path, edited: str) -> None:
    records = _records(repo, FleetInputs.compute(repo, repo))
    assert records, "the example tenants"
    path = repo / edited
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# an edit that changes no resource\n")
        decisions = _decisions(repo, records)
    finally:
        path.write_bytes(original)
    assert decisions == {stack: "unchanged: unchanged" for stack in records} | {"(renders)": ""}


@pytest.mark.parametrize("edited", CHANGED_BY)
def test_editing_what_shapes_the_resources_changes_every_tenant(repo: Path, edited: str) -> None:
    records = _records(repo, FleetInputs.compute(repo, repo))
    path = repo / edited
    original = path.read_bytes()
    comment = b"\n// edited\n" if edited.endswith(".js") else b"\n# edited\n"
    try:
        path.write_bytes(original + comment)
        decisions = _decisions(repo, records)
    finally:
        path.write_bytes(original)
    reason = "changed: program, components, platform config or provider version changed"
    assert decisions == {stack: reason for stack in records} | {"(renders)": ""}


def test_editing_how_stack_files_are_read_only_re_renders(repo: Path) -> None:
    # config/ reads values in: not in the program digest, but a render checks the bundle is the same.
    records = _records(repo, FleetInputs.compute(repo, repo))
    path = repo / "orchestrator/config/stack_file.py"
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# edited\n")
        decisions = _decisions(repo, records)
    finally:
        path.write_bytes(original)
    assert {s: d for s, d in decisions.items() if s != "(renders)"} == {
        stack: "unchanged: unchanged (re-rendered: same bundle)" for stack in records
    }
    assert decisions["(renders)"].split(",") == list(records)
