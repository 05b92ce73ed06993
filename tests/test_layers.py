"""What a layer loads: the import closure, checked where import-linter cannot see (runtime imports)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", ["orchestrator.fleet.rollout", "orchestrator.fleet.ports"])
def test_the_fleet_schedules_without_its_adapters(module: str) -> None:
    # The fleet owns its ports; the Automation-API adapter implements them. Deciding a rollout
    # must not load the engine, pulumi.automation or the offline mocks.
    loaded = _loaded(module)
    assert not {m for m in loaded if m == "pulumi" or m.startswith(("pulumi.", "orchestrator.engine"))}
    assert not {m for m in loaded if m.startswith(("orchestrator.offline", "orchestrator.cli"))}


def test_the_demo_does_not_load_the_cli() -> None:
    assert not {m for m in _loaded("orchestrator.ops.demo") if m.startswith("orchestrator.cli")}


def _sources_containing(needle: str) -> list[str]:
    from orchestrator.core.contract import REPO_ROOT

    roots = [REPO_ROOT / "orchestrator", REPO_ROOT / "components"]
    return sorted(
        str(path.relative_to(REPO_ROOT))
        for root in roots
        for path in root.rglob("*.py")
        if needle in path.read_text(encoding="utf-8")
    )


@pytest.mark.parametrize(
    ("literal", "home"),
    [
        ('"[secret]"', "orchestrator/core/masking.py"),
        ('"[redacted]"', "orchestrator/core/masking.py"),
        ('f"Pulumi.{stack}.yaml"', "orchestrator/core/names.py"),
        ("removeprefix(TENANT_STACK_PREFIX)", "orchestrator/core/names.py"),
    ],
)
def test_one_rule_lives_in_one_place(literal: str, home: str) -> None:
    # A second copy of a mask or a stack-name rule is how two answers to one question start.
    assert _sources_containing(literal) == [home]


def test_every_secret_mask_is_the_core_one() -> None:
    from orchestrator.core.contract import REPO_ROOT
    from orchestrator.core.masking import SECRET_MASK
    from orchestrator.offline.plan import plan_document
    from orchestrator.offline.session import run_offline

    run = run_offline(REPO_ROOT, "prod.acme")
    run.secret_outputs.add("script_name")  # as if the program had exported it as a secret
    document = plan_document(run)
    assert document["outputs"]["script_name"] == SECRET_MASK
    relay = next(b for r in document["resources"] for b in r["inputs"].get("bindings", []) if b["name"] == "RELAY_KEY")
    assert relay["text"] == SECRET_MASK


def test_error_classes_live_in_one_errors_module_per_layer() -> None:
    import importlib
    import pkgutil

    import orchestrator
    from orchestrator.core.errors import EdgeError

    for module in pkgutil.walk_packages(orchestrator.__path__, "orchestrator."):
        if module.name not in ("orchestrator.__main__", "orchestrator.testing.__main__"):
            importlib.import_module(module.name)
    seen, todo = set(), [EdgeError]
    while todo:
        cls = todo.pop()
        seen.add(cls)
        todo.extend(c for c in cls.__subclasses__() if c not in seen and c.__module__.startswith("orchestrator."))
    homes = {cls.__name__: cls.__module__ for cls in seen}
    assert {m for m in homes.values() if not m.endswith(".errors")} == set(), homes


def test_every_package_map_names_every_module() -> None:
    """Each package's `__init__` docstring is its map: a module it does not name is a room nobody can find."""
    import ast
    from pathlib import Path

    import orchestrator

    root = Path(orchestrator.__file__).parent
    packages = [init.parent for init in sorted(root.glob("*/__init__.py"))]
    assert len(packages) >= 10, packages
    missing = {
        f"{package.name}/{module.name}"
        for package in packages
        for module in package.glob("*.py")
        if module.stem != "__init__"
        and f"`{module.stem}`" not in (ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or "")
    }
    assert missing == set(), f"not named in their package's __init__ docstring: {sorted(missing)}"
