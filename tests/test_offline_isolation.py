"""The offline path leaves no Pulumi global state behind (mocks, settings, config, root resource).

The SDK keeps these in ContextVars (pulumi/runtime/settings.py: "The properties of SETTINGS are
contextvars"; pulumi/runtime/config.py: `CONFIG`, `_SECRET_KEYS`; `ROOT` for the root resource),
and `set_mocks` writes them for the current context. A plan or policy check run inside a long-lived
process (the control room, a test session) must not leave the next program seeing its monitor,
stack name or config.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
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


_REFUSED_RUNS = """
import gc
import pulumi_cloudflare as cf
from orchestrator.core.contract import REPO_ROOT
from orchestrator.offline.cloudflare_mock import FakeAccount
from orchestrator.offline.errors import ProviderRejected
from orchestrator.offline.session import OfflineSession

def refused():
    cf.WorkersScript("x-worker", account_id="0123456789abcdef0123456789abcdef", script_name="x",
                     main_module="index.js", content="export default {}", compatibility_date="2025-09-01",
                     bindings=[{"name": "KV", "type": "kv_namespace"}])

kept = []
for _ in range(3):
    try:
        OfflineSession(REPO_ROOT, "prod.test", account=FakeAccount(), config={}, program=refused).run()
    except ProviderRejected as exc:
        kept.append(exc)  # a report holds its errors
print("refused", len(kept))
kept.clear()
gc.collect()
"""


def test_refused_runs_print_nothing_when_their_errors_die() -> None:
    """One refused resource used to print ~80 asyncio "Future exception was never retrieved"
    tracebacks per run (one per dependent Output), when the error was dropped and at exit.

    Two holders kept the run's futures alive past the run: the SDK's RPC manager, which
    pulumi/runtime/mocks.py `test` clears only when the *next* run starts (pulumi 3.272.0), and the
    error's own traceback through the SDK's frames. A subprocess, so interpreter exit is covered.
    """
    done = subprocess.run(
        [sys.executable, "-c", _REFUSED_RUNS], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused 3" in done.stdout
    # Counts, not `in`: pytest's diff of a megabyte of tracebacks takes minutes.
    assert done.stderr.count("never retrieved") == 0
    assert done.stderr.count("Traceback") == 0


def test_a_run_after_asyncio_run_in_the_same_thread_works() -> None:
    """`asyncio.run` leaves the thread with no current loop; a plan after it must still run."""
    before = asyncio.get_event_loop()

    async def nothing() -> None:
        return None

    asyncio.run(nothing())
    try:
        run = run_offline(REPO_ROOT, "prod.acme")
        assert run.resources
    finally:
        asyncio.set_event_loop(before)  # the rest of this process's tests keep their loop
