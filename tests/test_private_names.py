"""No module of ours imports another module's private (`_name`) names.

A leading underscore says "this module's own"; a second module importing it couples the two where
nobody looks (config/reissue.py imported stack_file's `_refusal`, now `yaml_refusal`). What one
module needs of another gets a public name in the module it belongs to.
"""

from __future__ import annotations

import ast
from pathlib import Path

from orchestrator.core.contract import REPO_ROOT

ROOTS = ("orchestrator", "components", "policies/clawdbot_policies", "bench")
OURS = {"orchestrator", "components", "clawdbot_policies", "bench"}
"""Whose private names count: ours (relying on an upstream one is a different question)."""


def _private_imports_of(path: Path, name: str) -> set[tuple[str, str, str]]:
    """(`name`, module, private name) for each `from module import _x` in the file at `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        (name, node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] in OURS
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    }


def _private_imports() -> set[tuple[str, str, str]]:
    return {
        found
        for root in ROOTS
        for path in sorted((REPO_ROOT / root).rglob("*.py"))
        for found in _private_imports_of(path, path.relative_to(REPO_ROOT).as_posix())
    }


def test_no_module_imports_a_private_name_of_another() -> None:
    # Test modules are not held to this: they look inside on purpose.
    found = sorted(_private_imports())
    assert not found, f"private names imported across modules (give them a public name): {found}"


def test_the_check_sees_a_private_import_and_nothing_else(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from orchestrator.config.stack_file import _refusal, read_plain\n"
        "from orchestrator import __version__\nfrom . import _local\nimport _thread\nfrom pulumi import _upstream\n"
        "def f():\n    from orchestrator.core.model import _Hidden\n"
    )
    assert _private_imports_of(module, "m.py") == {
        ("m.py", "orchestrator.config.stack_file", "_refusal"),
        ("m.py", "orchestrator.core.model", "_Hidden"),
    }
