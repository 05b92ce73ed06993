"""The program's import closure, remembered between runs: always exactly the computed closure.

Every run computes the program digest; parsing the closure was most of a run with nothing to do.
The remembered closure is keyed by every repo module's path and bytes, so any edit, new module or
removal that could change the closure recomputes it; a damaged cache is never trusted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.fleet import changes
from orchestrator.fleet.changes import CLOSURE_CACHE, FleetInputs, cached_program_modules, program_modules

FILES = {
    "orchestrator/__init__.py": "",
    "orchestrator/program.py": "from orchestrator.core import crypto\n",
    "orchestrator/core/__init__.py": "",
    "orchestrator/core/crypto.py": "def f():\n    import orchestrator.core.lazy\n",
    "orchestrator/core/lazy.py": "x = 1\n",
    "orchestrator/core/other.py": "y = 1\n",
    "orchestrator/cli.py": "import orchestrator.program\n",
    "components/__init__.py": "",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "work").mkdir()
    return root


def closure(repo: Path) -> set[str]:
    return {str(p.relative_to(repo)) for p in cached_program_modules(repo, repo.parent / "work")}


def test_the_second_run_reads_the_remembered_closure(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = closure(repo)
    assert first == {str(p.relative_to(repo)) for p in program_modules(repo)}
    assert (repo.parent / "work" / CLOSURE_CACHE).is_file()

    def no_parse(*args: object) -> list[Path]:
        raise AssertionError("parsed again although no module changed")

    monkeypatch.setattr(changes, "program_modules", no_parse)
    assert closure(repo) == first


@pytest.mark.parametrize(
    "edit",
    [
        ("orchestrator/core/other.py", "import orchestrator.core.new\n"),  # a module starts importing
        ("orchestrator/program.py", "from orchestrator.core import crypto, other\n"),
        ("orchestrator/core/new.py", "z = 1\n"),  # a new module (imported by nobody yet)
    ],
)
def test_any_edit_of_a_repo_module_recomputes_it(repo: Path, edit: tuple[str, str]) -> None:
    closure(repo)
    name, text = edit
    (repo / name).write_text(text)
    (repo / "orchestrator/core/new.py").write_text("z = 1\n")
    assert closure(repo) == {str(p.relative_to(repo)) for p in program_modules(repo)}


def test_a_removed_module_leaves_the_closure(repo: Path) -> None:
    assert "orchestrator/core/lazy.py" in closure(repo)
    (repo / "orchestrator/core/crypto.py").write_text("x = 1\n")
    (repo / "orchestrator/core/lazy.py").unlink()
    assert "orchestrator/core/lazy.py" not in closure(repo)


@pytest.mark.parametrize(
    "damage",
    [b"", b"not json", b"[]", b'{"key": 1}', b'{"key": null, "modules": "x"}'],
)
def test_a_damaged_cache_is_recomputed_and_replaced(repo: Path, damage: bytes) -> None:
    expected = closure(repo)
    (repo.parent / "work" / CLOSURE_CACHE).write_bytes(damage)
    assert closure(repo) == expected
    assert json.loads((repo.parent / "work" / CLOSURE_CACHE).read_bytes())["modules"]


def test_a_forged_cache_for_another_tree_is_not_trusted(repo: Path) -> None:
    expected = closure(repo)
    path = repo.parent / "work" / CLOSURE_CACHE
    forged = json.loads(path.read_bytes()) | {"modules": ["orchestrator/cli.py"]}
    forged["key"] = "0" * 64
    path.write_text(json.dumps(forged))
    assert closure(repo) == expected


def test_digests_are_the_same_with_and_without_the_cache(repo: Path) -> None:
    plain = FleetInputs.compute(repo, repo)
    assert FleetInputs.compute(repo, repo, cache_dir=repo.parent / "work") == plain
    assert FleetInputs.compute(repo, repo, cache_dir=repo.parent / "work") == plain  # from the cache
    assert FleetInputs.compute(repo, repo, cache_dir=repo.parent / "missing") == plain  # nowhere to write


def test_the_real_tree_closure_is_the_remembered_one(tmp_path: Path) -> None:
    from orchestrator.core.contract import REPO_ROOT

    assert cached_program_modules(REPO_ROOT, tmp_path) == program_modules(REPO_ROOT)
    assert cached_program_modules(REPO_ROOT, tmp_path) == program_modules(REPO_ROOT)
