"""The offline path leaves no Pulumi global state behind (mocks, settings, config, root resource).

The SDK keeps these in ContextVars (pulumi/runtime/settings.py: "The properties of SETTINGS are
contextvars"; pulumi/runtime/config.py: `CONFIG`, `_SECRET_KEYS`; `ROOT` for the root resource),
and `set_mocks` writes them for the current context. A plan or policy check run inside a long-lived
process (the control room, a test session) must not leave the next program seeing its monitor,
stack name or config.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pulumi.runtime import config as pulumi_config
from pulumi.runtime import settings as pulumi_settings

from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import ConfigError
from orchestrator.offline.session import run_offline


def _globals() -> tuple[Any, ...]:
    loop = asyncio.get_event_loop()
    return (
        pulumi_settings.SETTINGS.monitor,
        pulumi_settings.SETTINGS.stack,
        pulumi_settings.SETTINGS.project,
        pulumi_settings.get_root_resource(),
        dict(pulumi_config.CONFIG.get()),
        loop.get_exception_handler(),
    )


def test_a_run_restores_every_global_it_touched() -> None:
    before = _globals()
    run = run_offline(REPO_ROOT, "prod.acme")
    assert run.resources  # it really ran the program
    assert _globals() == before


def test_a_failing_run_restores_them_too() -> None:
    before = _globals()
    with pytest.raises(ConfigError):
        run_offline(REPO_ROOT, "prod.acme", config={"clawdbot:tenant": {"id": "acme"}})
    assert _globals() == before


def test_two_runs_in_a_row_see_only_their_own_stack() -> None:
    first = run_offline(REPO_ROOT, "prod.acme")
    second = run_offline(REPO_ROOT, "prod.globex")
    assert {r.name for r in first.resources}.isdisjoint({r.name for r in second.resources})
