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
