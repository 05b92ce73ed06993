"""Where the CrossGuard pack lives, and its package imported under the name the analyzer gives it.

The pack may be published without this repo, so `policies/` is no package of ours: the analyzer
runs it with the pack directory as `sys.path[0]`, and here its package is loaded by path under
that same name, once per process. The policy runner and `core.hostnames` thus share one module
object, the very one the analyzer runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import SetupError

PACK_DIR = REPO_ROOT / "policies"
PACKAGE = "clawdbot_policies"


def import_pack_package(pack_dir: Path = PACK_DIR) -> ModuleType:
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    init = pack_dir / PACKAGE / "__init__.py"
    spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None or not init.is_file():
        raise SetupError(f"policy pack {pack_dir}: no {PACKAGE} package")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[PACKAGE]
        raise
    return module


def pack_module(name: str, pack_dir: Path = PACK_DIR) -> ModuleType:
    """`clawdbot_policies.<name>`, imported as the analyzer imports it."""
    import_pack_package(pack_dir)
    return importlib.import_module(f"{PACKAGE}.{name}")
