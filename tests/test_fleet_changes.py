"""Change detection's digests (fleet/changes.py): what they cover and what they must not; and wave planning."""

from __future__ import annotations

from pathlib import Path

from orchestrator.fleet.changes import FleetInputs, program_modules
from orchestrator.fleet.rollout import plan_waves


def test_plan_waves_puts_the_canary_alone_first() -> None:
    stacks = [f"s{i}" for i in range(8)]
    assert plan_waves(stacks, 3, None) == [["s0"], ["s1", "s2", "s3"], ["s4", "s5", "s6"], ["s7"]]
    assert plan_waves(stacks, 5, "s4") == [["s4"], ["s0", "s1", "s2", "s3", "s5"], ["s6", "s7"]]
    assert plan_waves(stacks, 5, "ghost")[0] == ["s0"]
    assert plan_waves([], 3, None) == []


def test_fleet_inputs_digest_real_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "components").mkdir(parents=True)
    (repo / "components" / "edge.py").write_text("x = 1\n")
    (repo / "worker_src" / "src").mkdir(parents=True)
    (repo / "worker_src" / "src" / "index.js").write_text("export default {}\n")
    first = FleetInputs.compute(repo, repo)
    assert FleetInputs.compute(repo, repo) == first
    (repo / "worker_src" / "src" / "index.js").write_text("export default {fetch(){}}\n")
    second = FleetInputs.compute(repo, repo)
    # The Worker's source is in every tenant's bundle: both digests move.
    assert second.program_digest != first.program_digest and second.render_digest != first.render_digest
    (repo / "components" / "edge.py").write_text("x = 2\n")
    assert FleetInputs.compute(repo, repo).program_digest != second.program_digest


def test_moving_the_checkout_changes_no_digest(tmp_path: Path) -> None:
    for where in ("a", "b"):
        repo = tmp_path / where / "repo"
        (repo / "components").mkdir(parents=True)
        (repo / "components" / "edge.py").write_text("x = 1\n")
        (repo / "worker_src" / "src").mkdir(parents=True)
        (repo / "worker_src" / "src" / "index.js").write_text("export default {}\n")
    moved = FleetInputs.compute(tmp_path / "b" / "repo", tmp_path / "b" / "repo")
    assert FleetInputs.compute(tmp_path / "a" / "repo", tmp_path / "a" / "repo") == moved


def test_program_digest_follows_what_the_program_imports(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "orchestrator" / "sub").mkdir(parents=True)
    (repo / "components").mkdir()
    (repo / "orchestrator" / "core").mkdir()
    files = {
        "orchestrator/__init__.py": "",
        "orchestrator/program.py": "from orchestrator.core import crypto\nfrom .sub import deep\n",
        "orchestrator/core/__init__.py": "",
        "orchestrator/core/crypto.py": "def f():\n    import orchestrator.core.lazy\n",
        "orchestrator/core/lazy.py": "x = 1\n",
        "orchestrator/sub/__init__.py": "",
        "orchestrator/sub/deep.py": "from ..core.contract import C\n",
        "orchestrator/core/contract.py": "C = 1\n",
        "orchestrator/cli.py": "import orchestrator.program\n",
    }
    for name, text in files.items():
        (repo / name).write_text(text)
    found = {str(p.relative_to(repo)) for p in program_modules(repo)}
    assert found == set(files) - {"orchestrator/cli.py"}
    first = FleetInputs.compute(repo, repo)
    (repo / "orchestrator" / "core" / "lazy.py").write_text("x = 2\n")  # imported inside a function
    second = FleetInputs.compute(repo, repo)
    assert second.program_digest != first.program_digest
    (repo / "orchestrator" / "cli.py").write_text("# not imported by the program\n")
    assert FleetInputs.compute(repo, repo).program_digest == second.program_digest
    (repo / "orchestrator" / "sub" / "deep.py").write_text("from ..core.contract import C  # reads values in\n")
    assert FleetInputs.compute(repo, repo).program_digest == second.program_digest, "imported, shapes nothing"


def test_program_digest_covers_the_real_program_modules() -> None:
    from orchestrator.core.contract import REPO_ROOT

    found = {str(p.relative_to(REPO_ROOT)) for p in program_modules(REPO_ROOT)}
    expected = {"orchestrator/core/crypto.py", "orchestrator/core/migrations.py", "orchestrator/core/contract.py"}
    assert expected | {"orchestrator/program.py", "components/d1_migrations.py"} <= found
    assert "orchestrator/fleet/rollout.py" not in found and "orchestrator/cli/fleet.py" not in found
